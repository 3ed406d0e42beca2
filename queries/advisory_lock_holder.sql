-- Who holds a metricsctl advisory lock: a bigint key is stored as classid (high 32 bits),
-- objid (low 32 bits) and objsubid 1. Advisory locks belong to a database: the same key taken in
-- another database of the server (another metricsctl's) is not in the way and is not named.
-- psql "$DATABASE_URL" -v lock_key=7882834757525140225 -f queries/advisory_lock_holder.sql
SELECT a.pid,
       COALESCE(NULLIF(a.application_name, ''), '(no application_name)') AS application_name,
       COALESCE(a.usename::text, '') AS user_name,
       COALESCE(host(a.client_addr), 'local socket') AS client,
       EXTRACT(EPOCH FROM now() - a.backend_start)::bigint AS connected_seconds
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.granted
  AND l.objsubid = 1
  AND ((l.classid::bigint << 32) | l.objid::bigint) = CAST(:'lock_key' AS bigint)
LIMIT 1;
