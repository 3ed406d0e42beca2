-- `partitions enable --status`: the conversion in progress, if any (run only when
-- metricsctl_conversion exists), with whether the session that drives it is still there and
-- whether it is building an index (its heartbeat waits until the index is built).
SELECT c.phase, c.started_at, c.heartbeat,
       CAST(EXTRACT(EPOCH FROM pg_catalog.now() - c.heartbeat) AS double precision)
           AS heartbeat_age_seconds,
       c.backfill_up_to, c.copied_up_to, c.rows_copied, c.rows_estimate, c.pid,
       EXISTS (SELECT FROM pg_catalog.pg_stat_activity a WHERE a.pid = c.pid) AS running,
       EXISTS (SELECT FROM pg_catalog.pg_stat_progress_create_index p WHERE p.pid = c.pid)
           AS building_index,
       -- Read through jsonb: a conversion an older metricsctl began has no such column.
       pg_catalog.to_jsonb(c) OPERATOR(pg_catalog.->>) 'stopped_by' AS stopped_by
FROM metricsctl_conversion c;
