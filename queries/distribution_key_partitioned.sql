-- migrate --distributed --partitioned: the partitioned layout's primary key (id, timestamp)
-- becomes (id, event_id, timestamp), holding both the distribution and the partition column.
-- Rendered with the schema for :"schema".
-- Two statements: Citus takes one subcommand per ALTER TABLE on a distributed table.
ALTER TABLE :"schema".metrics DROP CONSTRAINT metrics_pkey;
ALTER TABLE :"schema".metrics ADD CONSTRAINT metrics_pkey PRIMARY KEY (id, event_id, timestamp);
