-- When a run's time is up or it is interrupted: cancel the statement of each of its transactions,
-- named by server process and the transaction's start (transaction_settings.sql reports both).
-- A process that has since moved on to another transaction (behind a transaction pool, another
-- client's) has another start and is left alone. A statement run outside any transaction (CREATE
-- INDEX CONCURRENTLY, on a session that is the server process's alone) comes without a start. Asked on a connection of its own, as the same
-- role (pg_cancel_backend allows that), with the search path pinned to pg_catalog.
-- This replaces the protocol's cancel request, which pgbouncer 1.18 forwards and then crashes on
-- when the canceller hangs up first, as rust-postgres does (pgbouncer issue #801).
-- psql "$DATABASE_URL" -v pids='{12345}' -v transaction_starts='{1764936000.123456}' \
--   -f queries/cancel_own_statements.sql
SELECT a.pid, pg_catalog.pg_cancel_backend(a.pid) AS cancelled
FROM ROWS FROM (pg_catalog.unnest(CAST(:'pids' AS pg_catalog.int4[])),
                pg_catalog.unnest(CAST(:'transaction_starts' AS pg_catalog.numeric[])))
         AS own(pid, transaction_start)
JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) own.pid
WHERE own.transaction_start IS NULL
   OR EXTRACT(EPOCH FROM a.xact_start) OPERATOR(pg_catalog.=) own.transaction_start;
