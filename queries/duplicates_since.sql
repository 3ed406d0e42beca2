-- Duplicates check over a window (`check duplicates --since`), for monitoring every few minutes:
-- duplicates.sql's columns, over the guard rows ingested since :since (from
-- idx_processed_events_processed_at) and the metrics dated since :since (from
-- idx_metrics_timestamp; on partitioned metrics only the partitions from that month on are read).
-- A guard row's metric is looked for first among the metrics dated from a day before :since (a
-- live event is seconds old when it is ingested), and only when not there, anywhere — on
-- partitioned metrics, where event_id is unique only per partition, that probes every partition,
-- so a replay of old events makes the window dearer. Duplicated metrics are those of the window's
-- metrics stored twice within it.
-- psql "$DATABASE_URL" -v limit=10 -v since='2026-01-01T00:00:00Z' -f queries/duplicates_since.sql
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
missing AS (
    SELECT g.event_id,
           EXISTS (SELECT FROM metricsctl_retired_events r
                   WHERE r.event_id OPERATOR(pg_catalog.=) g.event_id) AS retired
    FROM guard g
    WHERE CASE
        WHEN EXISTS (SELECT FROM metrics m
                     WHERE m.event_id OPERATOR(pg_catalog.=) g.event_id
                       AND m.timestamp >= CAST(:'since' AS timestamptz) - interval '1 day')
            THEN false
        ELSE NOT EXISTS (SELECT FROM metrics m WHERE m.event_id OPERATOR(pg_catalog.=) g.event_id)
    END
),
lost AS (
    SELECT event_id FROM missing WHERE NOT retired
),
unguarded AS (
    SELECT r.event_id
    FROM recent r
    WHERE NOT EXISTS (SELECT FROM processed_events p
                      WHERE p.event_id OPERATOR(pg_catalog.=) r.event_id)
)
SELECT
    (SELECT pg_catalog.count(*) FROM guard) AS total_rows,
    (SELECT pg_catalog.count(DISTINCT event_id) FROM guard) AS unique_event_ids,
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
          LIMIT CAST(:'limit' AS bigint)) AS unguarded_samples;
