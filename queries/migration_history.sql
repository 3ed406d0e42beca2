-- The migrations refinery has recorded as applied (the table exists once migrate has run).
-- psql "$DATABASE_URL" -f queries/migration_history.sql
SELECT version, name, applied_on, checksum
FROM refinery_schema_history
ORDER BY version;
