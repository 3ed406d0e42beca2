-- `metricsctl grants`: which of the named roles exist.
-- psql "$DATABASE_URL" -v roles='{monitor,writer}' -f queries/roles_named.sql
SELECT CAST(rolname AS text) AS name
FROM pg_catalog.pg_roles
WHERE rolname = ANY (CAST(:'roles' AS name[]));
