-- `metricsctl repair`: metrics stored without their guard row (something wrote around the guard)
-- get one: the sensor id from the metric (its first copy), Kafka partition and offset unknown.
-- The only unique key of processed_events is event_id, so DO NOTHING without a target skips just a
-- guard row the consumer added meanwhile, and works while the primary key is being restored.
-- psql "$DATABASE_URL" -f queries/repair_unguarded_metrics.sql
INSERT INTO processed_events (event_id, sensor_id)
SELECT DISTINCT ON (m.event_id) m.event_id, m.sensor_id
FROM metrics m
WHERE NOT EXISTS (SELECT FROM processed_events p WHERE p.event_id OPERATOR(pg_catalog.=) m.event_id)
ORDER BY m.event_id, m.id
ON CONFLICT DO NOTHING
RETURNING event_id, sensor_id;
