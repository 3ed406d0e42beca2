-- Records an applied migration the way refinery does: version, name, when (RFC 3339) and the
-- checksum of its SQL (line endings normalised to LF: see src/migrations.rs).
-- psql "$DATABASE_URL" -v version=1 -v name=create_processed_events \
--   -v applied_on=2026-01-01T00:00:00Z -v checksum=123 -f queries/migration_history_insert.sql
INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
VALUES (CAST(:'version' AS int4), :'name', :'applied_on', :'checksum');
