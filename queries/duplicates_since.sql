-- Duplicates check over a window (`check duplicates --since`), for monitoring every few minutes:
-- duplicates.sql's columns, over the guard rows ingested since :since (from
-- idx_processed_events_processed_at) and the metrics dated since :since (from
-- idx_metrics_timestamp; on partitioned metrics only the partitions from that month on are
-- planned and read: :since and :looked_back arrive as timestamps, so the bounds are constants
-- the planner prunes by).
-- A guard row's metric is looked for among the metrics dated since :looked_back (a day before
-- :since: a live event is seconds old when it is ingested). Those not found there are only
-- counted here (unfound); duplicates_since_unfound.sql then looks for them anywhere — on
-- partitioned metrics, where event_id is unique only per partition, that plans and probes every
-- partition, so it runs only when there is something to look for (a replay of old events).
-- Duplicated metrics are those of the window's metrics stored twice within it.
-- psql "$DATABASE_URL" -v limit=10 -v since='2026-01-01T00:00:00Z' \
--   -v looked_back='2025-12-31T00:00:00Z' -f queries/duplicates_since.sql
WITH guard AS (
    SELECT event_id
    FROM processed_events
    WHERE processed_at >= CAST(:'since' AS timestamptz)
),
recent AS (
    SELECT event_id
    FROM metrics
    WHERE timestamp >= CAST(:'since' AS timestamptz)
),
duplicated AS (
    SELECT event_id, pg_catalog.count(*) AS copies
    FROM recent
    GROUP BY event_id
    HAVING pg_catalog.count(*) > 1
),
unfound AS (
    SELECT g.event_id
    FROM processed_events g
    WHERE g.processed_at >= CAST(:'since' AS timestamptz)
      AND NOT EXISTS (SELECT FROM metrics m
                      WHERE m.event_id OPERATOR(pg_catalog.=) g.event_id
                        AND m.timestamp >= CAST(:'looked_back' AS timestamptz))
),
unguarded AS (
    SELECT r.event_id
    FROM metrics r
    WHERE r.timestamp >= CAST(:'since' AS timestamptz)
      AND NOT EXISTS (SELECT FROM processed_events p
                      WHERE p.event_id OPERATOR(pg_catalog.=) r.event_id)
)
SELECT
    (SELECT pg_catalog.count(*) FROM guard) AS total_rows,
    (SELECT pg_catalog.count(DISTINCT event_id) FROM guard) AS unique_event_ids,
    (SELECT pg_catalog.count(*) FROM duplicated) AS duplicated_metric_ids,
    (SELECT CAST(COALESCE(pg_catalog.sum(copies - 1), 0) AS bigint) FROM duplicated)
        AS surplus_metric_rows,
    (SELECT pg_catalog.count(*) FROM unfound) AS unfound,
    (SELECT pg_catalog.count(*) FROM unguarded) AS unguarded_metrics,
    ARRAY(SELECT CAST(event_id AS text) FROM duplicated ORDER BY copies DESC, event_id
          LIMIT CAST(:'limit' AS bigint)) AS duplicated_samples,
    ARRAY(SELECT CAST(event_id AS text) FROM unguarded ORDER BY event_id
          LIMIT CAST(:'limit' AS bigint)) AS unguarded_samples;
