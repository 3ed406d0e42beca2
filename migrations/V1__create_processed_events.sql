-- processed_events: the idempotency guard. Every event_id is recorded here before its metric.
-- Exactly the schema implementation guide's table; IF NOT EXISTS adopts a database that the
-- guide's init.sql already created.
CREATE TABLE IF NOT EXISTS processed_events (
    event_id VARCHAR(255) PRIMARY KEY,
    sensor_id VARCHAR(255) NOT NULL,
    processed_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    kafka_partition INTEGER,
    kafka_offset BIGINT
);

CREATE INDEX IF NOT EXISTS idx_processed_events_sensor_id ON processed_events(sensor_id);
CREATE INDEX IF NOT EXISTS idx_processed_events_processed_at ON processed_events(processed_at);
