-- demo: where the primary's WAL stands now, for the standby to catch up to.
-- psql "$DATABASE_URL" -f queries/demo_primary_wal.sql
SELECT CAST(pg_catalog.pg_current_wal_lsn() AS text) AS wal_lsn;
