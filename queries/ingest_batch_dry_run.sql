-- `replay --dry-run`: how many of a batch's events the real run would insert, writing nothing to
-- the guide's tables. An event is counted when it has no guard row, no metric (the real run keeps
-- a metric stored without its guard) and was not counted earlier in this dry run: those are noted
-- in the transaction's temporary table metricsctl_dry_run_seen (ingest_dry_run_setup.sql).
-- would_restore counts what `replay --repair` would restore: a guard row without its metric (not
-- retired by retention), likewise once.
-- psql "$DATABASE_URL" --single-transaction -f queries/ingest_dry_run_setup.sql \
--   -v schema=public -v retired_events=metricsctl_retired_events -f queries/retired_events_table.sql \
--   -v event_ids='{e1,e2}' -f queries/ingest_batch_dry_run.sql
WITH batch AS (
    SELECT DISTINCT event_id
    FROM pg_catalog.unnest(CAST(:'event_ids' AS varchar[])) AS b(event_id)
),
unseen AS (
    SELECT b.event_id,
           EXISTS (SELECT FROM processed_events p
                   WHERE p.event_id OPERATOR(pg_catalog.=) b.event_id) AS guarded
    FROM batch b
    WHERE NOT EXISTS (SELECT FROM metrics m WHERE m.event_id OPERATOR(pg_catalog.=) b.event_id)
      AND NOT EXISTS (SELECT FROM pg_temp.metricsctl_dry_run_seen s
                      WHERE s.event_id OPERATOR(pg_catalog.=) b.event_id)
),
noted AS (
    INSERT INTO pg_temp.metricsctl_dry_run_seen (event_id)
    SELECT event_id
    FROM unseen u
    WHERE NOT u.guarded
       OR NOT EXISTS (SELECT FROM :"retired_events" r
                      WHERE r.event_id OPERATOR(pg_catalog.=) u.event_id)
    RETURNING event_id
)
SELECT (SELECT pg_catalog.count(*) FROM unseen u WHERE NOT u.guarded) AS would_insert,
       (SELECT pg_catalog.count(*) FROM noted n
        JOIN unseen u ON u.event_id OPERATOR(pg_catalog.=) n.event_id
        WHERE u.guarded) AS would_restore;
