-- Who holds a lock on a table, for the message when a lock was not granted in time: every other
-- session with a granted lock on it (any mode: the one in the way is among them). Only this
-- database's locks: a database copied from a template has its tables under the same OIDs.
-- psql "$DATABASE_URL" -v relation=metrics -f queries/table_lock_holders.sql
SELECT DISTINCT a.pid,
       COALESCE(NULLIF(a.application_name, ''), '(no application_name)') AS application_name,
       COALESCE(CAST(a.usename AS text), '') AS user_name,
       CASE WHEN a.client_port = -1 THEN 'local socket' ELSE pg_catalog.host(a.client_addr) END
           AS client,
       CAST(EXTRACT(EPOCH FROM pg_catalog.now() - a.backend_start) AS bigint) AS connected_seconds
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.relation = CAST(pg_catalog.to_regclass(:'relation') AS oid)
  AND l.database = (SELECT oid FROM pg_catalog.pg_database
                    WHERE datname = pg_catalog.current_database())
  AND l.granted
  AND l.pid <> pg_catalog.pg_backend_pid()
ORDER BY a.pid;
