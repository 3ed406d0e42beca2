-- Bounds how long this transaction waits for a table lock (milliseconds).
SELECT set_config('lock_timeout', CAST(:'milliseconds' AS text), true);
