-- `partitions enable` (online): the converting session notices within a second that its client
-- is gone (killed) and stops its statement — a long index build or backfill batch — instead of
-- running on and holding the conversion until a rerun ends it. The setting exists from
-- PostgreSQL 14 on; older servers go without. It is the session's (the conversion runs on a
-- session of its own, never through a transaction pool).
SELECT pg_catalog.set_config('client_connection_check_interval', '1s', false)
WHERE CAST(pg_catalog.current_setting('server_version_num') AS integer) >= 140000;
