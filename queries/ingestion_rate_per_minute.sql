-- The seed's "check ingestion rate" query: metrics ingested per minute, newest ten minutes.
-- psql "$DATABASE_URL" -f queries/ingestion_rate_per_minute.sql
SELECT
    DATE_TRUNC('minute', created_at) as minute,
    COUNT(*) as events_processed
FROM metrics
GROUP BY minute
ORDER BY minute DESC
LIMIT 10;
