-- How many of these event ids the guard already holds (replay --dry-run; read-only).
-- psql "$DATABASE_URL" -v event_ids='{e1,e2}' -f queries/processed_event_ids_present.sql
SELECT count(*) AS present
FROM processed_events
WHERE event_id = ANY (CAST(:'event_ids' AS varchar[]));
