-- Who holds a lock on a table, for the message when a lock was not granted in time: every other
-- session with a granted lock on it (any mode: the one in the way is among them). Only this
-- database's locks: a database copied from a template has its tables under the same OIDs.
-- psql "$DATABASE_URL" -v relation=metrics -f queries/table_lock_holders.sql
SELECT DISTINCT a.pid,
       COALESCE(NULLIF(a.application_name, ''), '(no application_name)') AS application_name,
       COALESCE(a.usename::text, '') AS user_name,
       COALESCE(host(a.client_addr), 'local socket') AS client,
       EXTRACT(EPOCH FROM now() - a.backend_start)::bigint AS connected_seconds
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.relation = to_regclass(:'relation')
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.granted
  AND l.pid <> pg_backend_pid()
ORDER BY a.pid;
