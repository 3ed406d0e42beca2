-- Releases the session-level advisory lock taken with advisory_lock_try.sql.
-- psql "$DATABASE_URL" -v lock_key=7882834757525140225 -f queries/advisory_unlock.sql
SELECT pg_catalog.pg_advisory_unlock(CAST(:'lock_key' AS bigint)) AS released;
