-- `partitions enable` (online), when it starts afresh: no bookkeeping row is left from an earlier
-- run.
DELETE FROM metricsctl_conversion;
