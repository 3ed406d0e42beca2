-- `partitions enable` (online): the bookkeeping row of a conversion that starts.
INSERT INTO metricsctl_conversion (phase, pid) VALUES ('building', pg_catalog.pg_backend_pid());
