-- When a run's time is up or it is interrupted: what each of its sessions' statements waits for,
-- and the sessions in its way (pg_blocking_pids), so the message can say why it stopped and whom
-- to look at. Runs on a connection of its own with the search path pinned to pg_catalog, and is
-- written schema-qualified besides.
-- Each is named by server process and transaction start, as cancel_own_statements.sql names them:
-- behind a transaction pool a process may serve another client now (the observer itself, say).
-- psql "$DATABASE_URL" -v pids='{12345}' -v transaction_starts='{1764936000.123456}' \
--   -f queries/sessions_waiting.sql
SELECT w.pid AS waiting_pid,
       w.wait_event_type,
       w.wait_event,
       b.pid AS blocker_pid,
       b.pid,
       CASE WHEN b.application_name OPERATOR(pg_catalog.=) '' THEN '(no application_name)'
            ELSE b.application_name END AS application_name,
       COALESCE(CAST(b.usename AS pg_catalog.text), '') AS user_name,
       CASE WHEN b.client_port OPERATOR(pg_catalog.=) -1 THEN 'local socket'
            ELSE pg_catalog.host(b.client_addr) END AS client,
       CAST(EXTRACT(EPOCH FROM pg_catalog.now() OPERATOR(pg_catalog.-) b.backend_start)
            AS pg_catalog.int8) AS connected_seconds,
       CAST(b.state AS pg_catalog.text)
           OPERATOR(pg_catalog.||) ', last statement: '
           OPERATOR(pg_catalog.||) pg_catalog."left"(b.query, 120) AS blocker_query
FROM ROWS FROM (pg_catalog.unnest(CAST(:'pids' AS pg_catalog.int4[])),
                pg_catalog.unnest(CAST(:'transaction_starts' AS pg_catalog.numeric[])))
         AS own(pid, transaction_start)
JOIN pg_catalog.pg_stat_activity w ON w.pid OPERATOR(pg_catalog.=) own.pid
LEFT JOIN LATERAL pg_catalog.unnest(pg_catalog.pg_blocking_pids(w.pid)) AS blocking(pid) ON true
LEFT JOIN pg_catalog.pg_stat_activity b ON b.pid OPERATOR(pg_catalog.=) blocking.pid
WHERE w.state OPERATOR(pg_catalog.=) 'active'
  AND w.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
  AND (own.transaction_start IS NULL
       OR EXTRACT(EPOCH FROM w.xact_start) OPERATOR(pg_catalog.=) own.transaction_start)
ORDER BY w.pid, b.pid;
