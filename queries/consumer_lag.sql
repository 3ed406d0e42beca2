-- The seed's "check consumer lag (indirect)" query: newest event timestamp against now.
-- psql "$DATABASE_URL" -f queries/consumer_lag.sql
SELECT
    MAX(timestamp) as latest_metric_time,
    NOW() as current_time,
    EXTRACT(EPOCH FROM (NOW() - MAX(timestamp))) as lag_seconds
FROM metrics;
