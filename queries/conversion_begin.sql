-- `partitions enable` (online), first step, with no lock anyone waits on: the partitioned table
-- is built empty beside metrics as metrics_partitioned — the guide's columns, keys and three
-- indexes, a DEFAULT partition — and the bookkeeping row is written. The monthly partitions are
-- added next (partition_create.sql), then its keys (conversion_new_keys.sql). Its id takes the
-- same sequence, so ids go on where they were.
CREATE TABLE :"schema".metrics_partitioned (
    id BIGINT NOT NULL DEFAULT pg_catalog.nextval(CAST(:'sequence' AS regclass)),
    sensor_id VARCHAR(255) NOT NULL,
    event_id VARCHAR(255) NOT NULL,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT pg_catalog.now()
) PARTITION BY RANGE (timestamp);
CREATE TABLE :"schema".metrics_default PARTITION OF metrics_partitioned DEFAULT;
