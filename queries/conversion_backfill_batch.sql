-- `partitions enable` (online): one committed batch of the backfill — metrics' rows with ids in
-- (:after, :upto], ids and all, into the partitioned table; rows the mirror already wrote are
-- skipped. The progress goes in the same transaction, so a rerun resumes exactly here.
WITH copied AS (
    INSERT INTO metrics_partitioned (id, sensor_id, event_id, timestamp, value, created_at)
    SELECT id, sensor_id, event_id, timestamp, value, created_at
    FROM metrics
    WHERE id > CAST(:'after' AS bigint) AND id <= CAST(:'upto' AS bigint)
    ON CONFLICT DO NOTHING
    RETURNING 1
),
progress AS (
    UPDATE metricsctl_conversion
    SET copied_up_to = CAST(:'upto' AS bigint),
        rows_copied = rows_copied + (SELECT pg_catalog.count(*) FROM copied),
        heartbeat = pg_catalog.now()
    RETURNING rows_copied
)
SELECT (SELECT pg_catalog.count(*) FROM copied) AS copied,
       (SELECT rows_copied FROM progress) AS rows_copied;
