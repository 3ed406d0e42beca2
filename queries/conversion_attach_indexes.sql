-- `partitions enable` (online): one partition's indexes attached to the partitioned table's (a
-- no-op for one already attached). Takes an ACCESS EXCLUSIVE lock on the three partition indexes
-- for an instant, bounded by lock_timeout; once every partition's is attached, the parent's index
-- is valid.
ALTER INDEX idx_metrics_partitioned_sensor_id ATTACH PARTITION :"sensor_id_index";
ALTER INDEX idx_metrics_partitioned_timestamp ATTACH PARTITION :"timestamp_index";
ALTER INDEX idx_metrics_partitioned_sensor_timestamp ATTACH PARTITION :"sensor_timestamp_index";
