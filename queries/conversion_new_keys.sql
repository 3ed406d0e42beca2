-- `partitions enable` (online): the keys and the guide's three indexes of the table being built,
-- under names of their own while metrics still holds the guide's; the swap gives them the guide's.
-- Instant: the table is empty.
ALTER TABLE metrics_partitioned ADD CONSTRAINT metrics_partitioned_pkey PRIMARY KEY (id, timestamp);
ALTER TABLE metrics_partitioned
    ADD CONSTRAINT metrics_partitioned_event_id_timestamp_key UNIQUE (event_id, timestamp);
CREATE INDEX idx_metrics_partitioned_sensor_id ON metrics_partitioned(sensor_id);
CREATE INDEX idx_metrics_partitioned_timestamp ON metrics_partitioned(timestamp);
CREATE INDEX idx_metrics_partitioned_sensor_timestamp ON metrics_partitioned(sensor_id, timestamp DESC);
