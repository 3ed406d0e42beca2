-- The guide's partitioned metrics ("Optional: Time-Based Partitioning"): the same columns, keyed
-- by (id, timestamp) and unique on (event_id, timestamp), with the guide's three indexes and a
-- DEFAULT partition so no insert ever fails. `partitions enable` builds it in place of the plain
-- table, keeping the existing metrics_id_seq (what BIGSERIAL would have created and owned), so
-- ids go on where they were. The keys and indexes come after the rows are loaded (faster).
CREATE TABLE :"schema".metrics (
    id BIGINT NOT NULL DEFAULT pg_catalog.nextval(CAST(:'sequence' AS regclass)),
    sensor_id VARCHAR(255) NOT NULL,
    event_id VARCHAR(255) NOT NULL,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT pg_catalog.now()
) PARTITION BY RANGE (timestamp);
ALTER SEQUENCE :"schema".:"sequence_name" OWNED BY metrics.id;
CREATE TABLE :"schema".metrics_default PARTITION OF metrics DEFAULT;
