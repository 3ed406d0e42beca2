-- Bounds how long this session waits for a table lock (milliseconds), so DDL never hangs
-- behind a long query.
SELECT set_config('lock_timeout', CAST(:'milliseconds' AS text), false);
