-- How metrics is laid out: 'r' plain table, 'p' partitioned, no row when it does not exist.
-- psql "$DATABASE_URL" -f queries/metrics_layout.sql
SELECT CAST(c.relkind AS text) AS relkind
FROM pg_catalog.pg_class c
WHERE c.oid = CAST(pg_catalog.to_regclass('metrics') AS oid);
