-- `partitions enable` (online): the conversion reached another phase.
UPDATE metricsctl_conversion SET phase = :'phase', heartbeat = pg_catalog.now();
