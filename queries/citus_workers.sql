-- A Citus coordinator's active workers (the coordinator itself is group 0).
-- psql "$DATABASE_URL" -f queries/citus_workers.sql
SELECT pg_catalog.count(*) AS workers
FROM pg_catalog.pg_dist_node
WHERE CAST(noderole AS text) OPERATOR(pg_catalog.=) 'primary'
  AND isactive
  AND groupid OPERATOR(pg_catalog.<>) 0;
