-- `partitions enable` (online): the converting session notices within a second that its client
-- is gone (killed) and stops its statement — a long index build or backfill batch — instead of
-- running on and holding the conversion until a rerun ends it (PostgreSQL 14 and later).
SET client_connection_check_interval = '1s';
