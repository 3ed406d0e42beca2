-- `partitions enable` (online): the keys of the table being built, under names of their own while
-- metrics still holds the guide's; the swap gives them the guide's. Instant: the table is empty.
-- The guide's three other indexes come after the backfill (conversion_parent_indexes.sql,
-- conversion_partition_indexes.sql): every row the writers mirror meanwhile is cheaper without them.
ALTER TABLE metrics_partitioned ADD CONSTRAINT metrics_partitioned_pkey PRIMARY KEY (id, timestamp);
ALTER TABLE metrics_partitioned
    ADD CONSTRAINT metrics_partitioned_event_id_timestamp_key UNIQUE (event_id, timestamp);
