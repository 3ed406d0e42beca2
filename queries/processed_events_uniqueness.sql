-- The seed's "check idempotency" query: total rows should equal distinct event ids.
-- psql "$DATABASE_URL" -f queries/processed_events_uniqueness.sql
SELECT
    COUNT(*) as total_rows,
    COUNT(DISTINCT event_id) as unique_event_ids
FROM processed_events;
