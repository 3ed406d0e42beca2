-- Takes an advisory lock until the transaction ends, if free: how `migrate` serialises runs. It
-- ends with the transaction whatever happens, so it is safe behind a transaction-pooling proxy,
-- where a session-level lock would stay with whichever server connection took it.
-- psql "$DATABASE_URL" -v lock_key=7882834757525140225 -f queries/advisory_xact_lock_try.sql
SELECT pg_catalog.pg_try_advisory_xact_lock(CAST(:'lock_key' AS bigint)) AS acquired;
