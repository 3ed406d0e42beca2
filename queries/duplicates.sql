-- Duplicates check: the guide's two idempotency queries (processed_events total vs distinct
-- event ids; metrics event ids stored more than once — possible once metrics is partitioned, where
-- uniqueness is per (event_id, timestamp), or if a constraint was dropped) plus consistency
-- between the tables: guard rows without their metric (a lost metric) and metrics without their
-- guard row (the guard was bypassed). A guard row whose metric retention retired (noted in
-- metricsctl's metricsctl_retired_events; when that table does not exist metricsctl reads it as
-- empty) is not lost, only counted. Counts, and up to :limit sample ids of each.
-- psql "$DATABASE_URL" -v limit=10 -f queries/duplicates.sql
WITH duplicated AS (
    SELECT event_id, count(*) AS copies
    FROM metrics
    GROUP BY event_id
    HAVING count(*) > 1
),
missing AS (
    SELECT p.event_id,
           EXISTS (SELECT 1 FROM metricsctl_retired_events r WHERE r.event_id = p.event_id) AS retired
    FROM processed_events p
    WHERE NOT EXISTS (SELECT 1 FROM metrics m WHERE m.event_id = p.event_id)
),
lost AS (
    SELECT event_id FROM missing WHERE NOT retired
),
unguarded AS (
    SELECT m.event_id
    FROM metrics m
    WHERE NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.event_id = m.event_id)
)
SELECT
    guard.total_rows,
    guard.unique_event_ids,
    (SELECT count(*) FROM duplicated) AS duplicated_metric_ids,
    (SELECT CAST(COALESCE(sum(copies - 1), 0) AS bigint) FROM duplicated) AS surplus_metric_rows,
    (SELECT count(*) FROM lost) AS lost_metrics,
    (SELECT count(*) FROM missing WHERE retired) AS retired_events,
    (SELECT count(*) FROM unguarded) AS unguarded_metrics,
    ARRAY(SELECT event_id FROM duplicated ORDER BY copies DESC, event_id
          LIMIT CAST(:'limit' AS bigint)) AS duplicated_samples,
    ARRAY(SELECT event_id FROM lost ORDER BY event_id
          LIMIT CAST(:'limit' AS bigint)) AS lost_samples,
    ARRAY(SELECT event_id FROM unguarded ORDER BY event_id
          LIMIT CAST(:'limit' AS bigint)) AS unguarded_samples
FROM (
    SELECT COUNT(*) AS total_rows, COUNT(DISTINCT event_id) AS unique_event_ids
    FROM processed_events
) guard;
