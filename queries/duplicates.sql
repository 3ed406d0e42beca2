-- Duplicates check: the guide's two idempotency queries (processed_events total vs distinct
-- event ids; metrics event ids stored more than once — possible once metrics is partitioned, where
-- uniqueness is per (event_id, timestamp), or if a constraint was dropped) plus consistency
-- between the tables: guard rows without their metric (a lost metric) and metrics without their
-- guard row (the guard was bypassed). A guard row whose metric retention retired (noted in
-- metricsctl's metricsctl_retired_events; when that table does not exist, or is not a table of
-- the tables' owner, metricsctl reads it as empty) is not lost, only counted. Counts, and up to
-- :limit sample ids of each.
-- It reads the retired events from :"retired_events", the table itself or, where metricsctl does
-- not trust one, an empty set in its place (SchemaFacts::with_retired_events).
-- psql "$DATABASE_URL" -v limit=10 -v retired_events=metricsctl_retired_events \
--   -f queries/duplicates.sql
WITH duplicated AS (
    SELECT event_id, pg_catalog.count(*) AS copies
    FROM metrics
    GROUP BY event_id
    HAVING pg_catalog.count(*) > 1
),
missing AS (
    SELECT p.event_id,
           EXISTS (SELECT FROM :"retired_events" r
                   WHERE r.event_id OPERATOR(pg_catalog.=) p.event_id) AS retired
    FROM processed_events p
    WHERE NOT EXISTS (SELECT FROM metrics m WHERE m.event_id OPERATOR(pg_catalog.=) p.event_id)
),
lost AS (
    SELECT event_id FROM missing WHERE NOT retired
),
unguarded AS (
    SELECT m.event_id
    FROM metrics m
    WHERE NOT EXISTS (SELECT FROM processed_events p
                      WHERE p.event_id OPERATOR(pg_catalog.=) m.event_id)
)
SELECT
    guard.total_rows,
    guard.unique_event_ids,
    (SELECT pg_catalog.count(*) FROM duplicated) AS duplicated_metric_ids,
    (SELECT CAST(COALESCE(pg_catalog.sum(copies - 1), 0) AS bigint) FROM duplicated)
        AS surplus_metric_rows,
    (SELECT pg_catalog.count(*) FROM lost) AS lost_metrics,
    (SELECT pg_catalog.count(*) FROM missing WHERE retired) AS retired_events,
    (SELECT pg_catalog.count(*) FROM unguarded) AS unguarded_metrics,
    ARRAY(SELECT CAST(event_id AS text) FROM duplicated ORDER BY copies DESC, event_id
          LIMIT CAST(:'limit' AS bigint)) AS duplicated_samples,
    ARRAY(SELECT CAST(event_id AS text) FROM lost ORDER BY event_id
          LIMIT CAST(:'limit' AS bigint)) AS lost_samples,
    ARRAY(SELECT CAST(event_id AS text) FROM unguarded ORDER BY event_id
          LIMIT CAST(:'limit' AS bigint)) AS unguarded_samples
FROM (
    SELECT pg_catalog.count(*) AS total_rows, pg_catalog.count(DISTINCT event_id) AS unique_event_ids
    FROM processed_events
) guard;
