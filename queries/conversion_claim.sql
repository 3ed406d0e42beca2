-- `partitions enable` (online): this session drives the conversion now (a rerun after a kill or a
-- stop), and the note of why the last run stopped goes (a conversion an older metricsctl began
-- gets the column first).
ALTER TABLE metricsctl_conversion ADD COLUMN IF NOT EXISTS stopped_by TEXT;
UPDATE metricsctl_conversion
SET pid = pg_catalog.pg_backend_pid(), heartbeat = pg_catalog.now(), stopped_by = NULL;
