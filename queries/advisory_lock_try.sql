-- Takes the session-level advisory lock metricsctl uses to serialise a kind of work, if free
-- (only on a session of its own: see src/db/pooling.rs).
-- psql "$DATABASE_URL" -v lock_key=7882834757525140225 -f queries/advisory_lock_try.sql
SELECT pg_catalog.pg_try_advisory_lock(CAST(:'lock_key' AS bigint)) AS acquired;
