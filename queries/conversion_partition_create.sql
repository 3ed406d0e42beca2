-- `partitions enable` (online): one month's partition of the table being built.
CREATE TABLE :"schema".:"partition" PARTITION OF metrics_partitioned
    FOR VALUES FROM (:'from') TO (:'to');
