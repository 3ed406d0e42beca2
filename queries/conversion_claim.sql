-- `partitions enable` (online): this session drives the conversion now (a rerun after a kill).
UPDATE metricsctl_conversion SET pid = pg_backend_pid(), heartbeat = now();
