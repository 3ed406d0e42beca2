-- Who holds a metricsctl advisory lock: a bigint key is stored as classid (high 32 bits),
-- objid (low 32 bits) and objsubid 1. Advisory locks belong to a database: the same key taken in
-- another database of the server (another metricsctl's) is not in the way and is not named.
-- psql "$DATABASE_URL" -v lock_key=7882834757525140225 -f queries/advisory_lock_holder.sql
SELECT a.pid,
       COALESCE(NULLIF(a.application_name, ''), '(no application_name)') AS application_name,
       COALESCE(CAST(a.usename AS text), '') AS user_name,
       CASE WHEN a.client_port = -1 THEN 'local socket' ELSE pg_catalog.host(a.client_addr) END
           AS client,
       CAST(EXTRACT(EPOCH FROM pg_catalog.now() - a.backend_start) AS bigint) AS connected_seconds
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.database = (SELECT oid FROM pg_catalog.pg_database
                    WHERE datname = pg_catalog.current_database())
  AND l.granted
  AND l.objsubid = 1
  AND ((CAST(l.classid AS bigint) << 32) | CAST(l.objid AS bigint))
      = CAST(:'lock_key' AS bigint)
LIMIT 1;
