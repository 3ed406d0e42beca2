-- Which of the guide's tables Citus distributes (hash, by which column), asked only where the
-- citus extension is: pg_dist_partition is its catalog of distributed tables.
-- psql "$DATABASE_URL" -v schema=public -f queries/distributed_tables.sql
SELECT CAST(c.relname AS text) AS table_name,
       CAST(pg_catalog.column_to_column_name(d.logicalrelid, d.partkey) AS text) AS column_name,
       d.colocationid AS colocation_id
FROM pg_catalog.pg_dist_partition d
JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.logicalrelid
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE n.nspname OPERATOR(pg_catalog.=) CAST(:'schema' AS name)
  AND c.relname OPERATOR(pg_catalog.=) ANY (CAST(ARRAY['processed_events', 'metrics'] AS name[]))
ORDER BY c.relname;
