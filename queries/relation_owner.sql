-- The owner of a relation in the tables' schema (a month's table that would become a partition),
-- and whether it is an ordinary table: a partition of metrics must be a table of metrics' owner.
-- psql "$DATABASE_URL" -v relation=metrics_2026_01 -f queries/relation_owner.sql
SELECT CAST(r.rolname AS text) AS owner, CAST(c.relkind AS text) AS kind
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_roles r ON r.oid = c.relowner
WHERE c.oid = CAST(pg_catalog.to_regclass(:'relation') AS oid);
