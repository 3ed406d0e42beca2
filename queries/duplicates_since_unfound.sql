-- `check duplicates --since`, second part, run only when duplicates_since.sql found guard rows of
-- the window whose metric is not dated since :looked_back: is it anywhere? Those with no metric
-- at all are lost, or retired by retention (metricsctl_retired_events). On partitioned metrics
-- this probes every partition, the reason it is a statement of its own.
-- psql "$DATABASE_URL" -v limit=10 -v since='2026-01-01T00:00:00Z' \
--   -v looked_back='2025-12-31T00:00:00Z' -v retired_events=metricsctl_retired_events -f queries/retired_events_table.sql \
--   -f queries/duplicates_since_unfound.sql
WITH unfound AS (
    SELECT g.event_id
    FROM processed_events g
    WHERE g.processed_at >= CAST(:'since' AS timestamptz)
      AND NOT EXISTS (SELECT FROM metrics m
                      WHERE m.event_id OPERATOR(pg_catalog.=) g.event_id
                        AND m.timestamp >= CAST(:'looked_back' AS timestamptz))
),
missing AS (
    SELECT u.event_id,
           EXISTS (SELECT FROM :"retired_events" r
                   WHERE r.event_id OPERATOR(pg_catalog.=) u.event_id) AS retired
    FROM unfound u
    WHERE NOT EXISTS (SELECT FROM metrics m WHERE m.event_id OPERATOR(pg_catalog.=) u.event_id)
),
lost AS (
    SELECT event_id FROM missing WHERE NOT retired
)
SELECT (SELECT pg_catalog.count(*) FROM lost) AS lost_metrics,
       (SELECT pg_catalog.count(*) FROM missing WHERE retired) AS retired_events,
       ARRAY(SELECT CAST(event_id AS text) FROM lost ORDER BY event_id
             LIMIT CAST(:'limit' AS bigint)) AS lost_samples;
