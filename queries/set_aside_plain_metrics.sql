-- `partitions enable`, first step: the plain metrics steps aside under another name, gives up
-- its constraint and index names and the id sequence, so the partitioned table can take them.
ALTER TABLE metrics RENAME TO metrics_before_partitioning;
ALTER TABLE metrics_before_partitioning DROP CONSTRAINT IF EXISTS metrics_pkey;
ALTER TABLE metrics_before_partitioning DROP CONSTRAINT IF EXISTS metrics_event_id_key;
DROP INDEX IF EXISTS idx_metrics_sensor_id, idx_metrics_timestamp, idx_metrics_sensor_timestamp;
ALTER TABLE metrics_before_partitioning ALTER COLUMN id DROP DEFAULT;
ALTER SEQUENCE metrics_id_seq OWNED BY NONE;
