-- `partitions enable` (online): a run that stopped notes why and in which phase, for `--status`
-- (a conversion begun by an older metricsctl gets the column first). A rerun's claim clears it.
ALTER TABLE metricsctl_conversion ADD COLUMN IF NOT EXISTS stopped_by TEXT;
UPDATE metricsctl_conversion SET stopped_by = :'why', heartbeat = pg_catalog.now();
