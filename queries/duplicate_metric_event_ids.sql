-- The seed's duplicate query: event ids stored more than once in metrics (should return 0 rows).
-- psql "$DATABASE_URL" -f queries/duplicate_metric_event_ids.sql
SELECT event_id, COUNT(*) as count
FROM metrics
GROUP BY event_id
HAVING COUNT(*) > 1;
