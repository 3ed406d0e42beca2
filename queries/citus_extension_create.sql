-- A throwaway Citus node (demo --distributed, the tests): the extension in a new database. A
-- server of yours has it from its administrator; metricsctl never creates it there.
-- psql "$DATABASE_URL" -f queries/citus_extension_create.sql
CREATE EXTENSION IF NOT EXISTS citus;
