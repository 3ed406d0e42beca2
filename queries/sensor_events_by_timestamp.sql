-- The seed's "check per-sensor ordering" query: one sensor's events, oldest timestamp first.
-- psql "$DATABASE_URL" -v sensor_id=sensor_123 -f queries/sensor_events_by_timestamp.sql
SELECT sensor_id, event_id, timestamp, value
FROM metrics
WHERE sensor_id = :'sensor_id'
ORDER BY timestamp ASC;
