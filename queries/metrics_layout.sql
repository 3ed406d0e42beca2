-- How metrics is laid out: 'r' plain table, 'p' partitioned, no row when it does not exist.
-- psql "$DATABASE_URL" -f queries/metrics_layout.sql
SELECT CAST(c.relkind AS text) AS relkind
FROM pg_class c
WHERE c.oid = to_regclass('metrics');
