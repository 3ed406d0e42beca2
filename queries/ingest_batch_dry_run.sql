-- `replay --dry-run`: how many of a batch's events the real run would insert, writing nothing to
-- the guide's tables. An event is counted when it has no guard row, no metric (the real run keeps
-- a metric stored without its guard) and was not counted earlier in this dry run: those are noted
-- in the transaction's temporary table metricsctl_dry_run_seen (ingest_dry_run_setup.sql).
-- would_restore counts what `replay --repair` would restore: a guard row without its metric (not
-- retired by retention), likewise once.
-- Each table is asked once, for the batch's ids, in a subquery of its own (hashed, not probed
-- per row; = ANY and NOT = ANY over it, pg_catalog's operator): no probe correlated with the batch, which Citus cannot plan against its distributed
-- tables (nor a join of them with the temporary table, which lives on the coordinator alone).
-- psql "$DATABASE_URL" --single-transaction -f queries/ingest_dry_run_setup.sql \
--   -v schema=public -v retired_events=metricsctl_retired_events -f queries/retired_events_table.sql \
--   -v event_ids='{e1,e2}' -f queries/ingest_batch_dry_run.sql
WITH batch AS (
    SELECT DISTINCT event_id
    FROM pg_catalog.unnest(CAST(:'event_ids' AS varchar[])) AS b(event_id)
),
unseen AS (
    SELECT b.event_id,
           b.event_id OPERATOR(pg_catalog.=) ANY (
               SELECT p.event_id FROM processed_events p
               WHERE p.event_id OPERATOR(pg_catalog.=) ANY (CAST(:'event_ids' AS varchar[])))
               AS guarded
    FROM batch b
    WHERE NOT (b.event_id OPERATOR(pg_catalog.=) ANY (
              SELECT m.event_id FROM metrics m
              WHERE m.event_id OPERATOR(pg_catalog.=) ANY (CAST(:'event_ids' AS varchar[]))))
      AND NOT (b.event_id OPERATOR(pg_catalog.=) ANY (
              SELECT s.event_id FROM pg_temp.metricsctl_dry_run_seen s
              WHERE s.event_id OPERATOR(pg_catalog.=) ANY (CAST(:'event_ids' AS varchar[]))))
),
noted AS (
    INSERT INTO pg_temp.metricsctl_dry_run_seen (event_id)
    SELECT event_id
    FROM unseen u
    WHERE NOT u.guarded
       OR NOT (u.event_id OPERATOR(pg_catalog.=) ANY (
              SELECT r.event_id FROM :"retired_events" r
              WHERE r.event_id OPERATOR(pg_catalog.=) ANY (CAST(:'event_ids' AS varchar[]))))
    RETURNING event_id
)
SELECT (SELECT pg_catalog.count(*) FROM unseen u WHERE NOT u.guarded) AS would_insert,
       (SELECT pg_catalog.count(*) FROM noted n
        JOIN unseen u ON u.event_id OPERATOR(pg_catalog.=) n.event_id
        WHERE u.guarded) AS would_restore;
