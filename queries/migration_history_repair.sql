-- `migrate repair`: records the checksum of a migration whose applied text differs from this
-- binary's only in whitespace; only if the row still holds the checksum that was examined.
-- psql "$DATABASE_URL" -v version=1 -v old_checksum=1 -v new_checksum=2 \
--   -f queries/migration_history_repair.sql
UPDATE refinery_schema_history
SET checksum = :'new_checksum'
WHERE version = CAST(:'version' AS int4) AND checksum OPERATOR(pg_catalog.=) :'old_checksum';
