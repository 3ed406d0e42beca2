-- Ends a server session (a killed conversion's, which holds its lock but has stopped beating).
-- psql "$DATABASE_URL" -v pid=12345 -f queries/terminate_backend.sql
SELECT pg_catalog.pg_terminate_backend(CAST(:'pid' AS integer)) AS terminated;
