-- migrate --distributed, plain layout: Citus enforces a key only when it contains the
-- distribution column, so metrics' primary key becomes (id, event_id). Every other key and name
-- stays the guide's (metrics_event_id_key already holds event_id).
-- Rendered with the schema for :"schema".
-- Two statements: Citus takes one subcommand per ALTER TABLE on a distributed table.
ALTER TABLE :"schema".metrics DROP CONSTRAINT metrics_pkey;
ALTER TABLE :"schema".metrics ADD CONSTRAINT metrics_pkey PRIMARY KEY (id, event_id);
