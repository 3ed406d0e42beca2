-- Every metricsctl transaction begins with this, after BEGIN in the same round trip. The settings
-- last until the transaction ends (set_config's third argument), so nothing depends on what a
-- pooled server connection was left with, and nothing is left on it for the next client:
-- - search_path: pg_catalog first, then the schema of the guide's tables, pg_temp last — only
--   PostgreSQL's own functions, operators and types answer to their names, and no temporary table
--   stands in for the guide's (not set while metricsctl asks the session's own path where the
--   tables are);
-- - jit off: compiling pays off only on long scans, yet estimates over big tables pass
--   jit_above_cost for statements that answer from indexes in milliseconds (on 10M rows `rate`
--   took 267 ms with JIT and 6 ms without, `lag` 117 and 31 ms; bench/scale.sh);
-- - statement_timeout: within the run's --timeout, when it has one (otherwise as the server and
--   the role have it);
-- - client_connection_check_interval 1s: a statement notices within a second that metricsctl is
--   gone (killed, or exited without a cancel reaching the server), directly or behind a pooler
--   that closes the server connection of a client gone mid-transaction, and ends, its
--   transaction rolled back, instead of running or waiting on behind a lock for nobody.
-- It also names the server process and the transaction's start (as pg_stat_activity shows it, in
-- exact epoch seconds), so a stopped run can cancel this very transaction's statement from another
-- connection, and nothing a pool has since handed that process to (src/db/interrupt.rs).
-- It runs before the path is pinned, so it is written schema-qualified.
-- psql "$DATABASE_URL" -v pin_search_path=on -v search_path='pg_catalog, public, pg_temp' \
--   -v bound_statements=off -v statement_timeout=0 -f queries/transaction_settings.sql
SELECT CASE WHEN CAST(:'pin_search_path' AS boolean)
            THEN pg_catalog.set_config('search_path', :'search_path', true) END AS search_path,
       pg_catalog.set_config('jit', 'off', true) AS jit,
       pg_catalog.set_config('client_connection_check_interval', '1000', true)
           AS client_connection_check_interval,
       CASE WHEN CAST(:'bound_statements' AS boolean)
            THEN pg_catalog.set_config('statement_timeout', :'statement_timeout', true)
       END AS statement_timeout,
       pg_catalog.pg_backend_pid() AS backend_pid,
       CAST(EXTRACT(EPOCH FROM pg_catalog.now()) AS pg_catalog.text) AS transaction_start;
