-- `partitions enable`, first step: the plain metrics steps aside under another name, gives up
-- its constraint and index names and the id sequence, so the partitioned table can take them.
-- PostgreSQL 18 names NOT NULL constraints too (metrics_id_not_null, ...), and a name in use
-- anywhere in the schema would give the partitioned table's a suffix (metrics_id_not_null1):
-- the set-aside table drops them; its rows are copied into a table that has its own.
ALTER TABLE metrics RENAME TO metrics_before_partitioning;
ALTER TABLE metrics_before_partitioning DROP CONSTRAINT IF EXISTS metrics_pkey;
ALTER TABLE metrics_before_partitioning DROP CONSTRAINT IF EXISTS metrics_event_id_key;
DROP INDEX IF EXISTS idx_metrics_sensor_id, idx_metrics_timestamp, idx_metrics_sensor_timestamp;
ALTER TABLE metrics_before_partitioning
    ALTER COLUMN id DROP DEFAULT,
    ALTER COLUMN id DROP NOT NULL,
    ALTER COLUMN sensor_id DROP NOT NULL,
    ALTER COLUMN event_id DROP NOT NULL,
    ALTER COLUMN timestamp DROP NOT NULL,
    ALTER COLUMN value DROP NOT NULL,
    ALTER COLUMN created_at DROP NOT NULL;
ALTER SEQUENCE metrics_id_seq OWNED BY NONE;
