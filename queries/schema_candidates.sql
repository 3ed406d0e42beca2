-- Where the guide's tables are: the schemas of the session's own search path in order (as psql
-- and the consumer resolve `metrics`; PGOPTIONS, the connection string's options and ALTER ROLE
-- ... SET search_path all count), temporary and catalog schemas left out, with which of the two
-- tables each holds. metricsctl takes the first that holds either; where neither exists yet, the
-- first one, where `migrate` creates them. Asked before metricsctl pins its own search path, so
-- it is written schema-qualified, operators included: nothing another role planted on the path
-- can answer in place of PostgreSQL's own.
-- psql "$DATABASE_URL" -f queries/schema_candidates.sql
SELECT CAST(n.nspname AS pg_catalog.text) AS schema,
       EXISTS (SELECT FROM pg_catalog.pg_class c
               WHERE c.relnamespace OPERATOR(pg_catalog.=) n.oid
                 AND c.relname OPERATOR(pg_catalog.=) 'processed_events') AS has_processed_events,
       EXISTS (SELECT FROM pg_catalog.pg_class c
               WHERE c.relnamespace OPERATOR(pg_catalog.=) n.oid
                 AND c.relname OPERATOR(pg_catalog.=) 'metrics') AS has_metrics
FROM pg_catalog.unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS path(schema, position)
JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) path.schema
WHERE n.oid OPERATOR(pg_catalog.<>) pg_catalog.pg_my_temp_schema()
  AND n.nspname OPERATOR(pg_catalog.<>) 'pg_catalog'
ORDER BY path.position;
