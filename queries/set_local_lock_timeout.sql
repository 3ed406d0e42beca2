-- Bounds how long this transaction waits for a table lock (milliseconds).
SELECT pg_catalog.set_config('lock_timeout', CAST(:'milliseconds' AS text), true);
