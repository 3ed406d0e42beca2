-- `partitions enable` (online), after the backfill: the guide's three indexes on the partitioned
-- table itself, ON ONLY — nothing is built (instant, under a SHARE lock on metrics_partitioned
-- bounded by lock_timeout) and each stays invalid until every partition's index is attached to it
-- (conversion_partition_indexes.sql, conversion_attach_indexes.sql).
CREATE INDEX IF NOT EXISTS idx_metrics_partitioned_sensor_id ON ONLY metrics_partitioned(sensor_id);
CREATE INDEX IF NOT EXISTS idx_metrics_partitioned_timestamp ON ONLY metrics_partitioned(timestamp);
CREATE INDEX IF NOT EXISTS idx_metrics_partitioned_sensor_timestamp
    ON ONLY metrics_partitioned(sensor_id, timestamp DESC);
