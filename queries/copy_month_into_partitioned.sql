-- `partitions enable`: one month's rows from the plain table into the partitioned one, ids kept.
INSERT INTO metrics (id, sensor_id, event_id, timestamp, value, created_at)
SELECT id, sensor_id, event_id, timestamp, value, created_at
FROM metrics_before_partitioning
WHERE timestamp >= CAST(:'from' AS timestamptz) AND timestamp < CAST(:'to' AS timestamptz);
