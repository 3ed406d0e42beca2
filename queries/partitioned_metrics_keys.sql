-- The partitioned metrics' keys and the guide's three indexes, built once the rows are in.
ALTER TABLE metrics ADD PRIMARY KEY (id, timestamp);
ALTER TABLE metrics ADD UNIQUE (event_id, timestamp);
CREATE INDEX idx_metrics_sensor_id ON metrics(sensor_id);
CREATE INDEX idx_metrics_timestamp ON metrics(timestamp);
CREATE INDEX idx_metrics_sensor_timestamp ON metrics(sensor_id, timestamp DESC);
