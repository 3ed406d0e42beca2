-- Whether this very server session holds the session-level advisory lock :lock_key. Asked in a
-- transaction after the one that took it: behind a transaction pool the two may have run on
-- different server connections, and the lock is then held by a connection this client no longer
-- has (src/db/connect.rs refuses to go on).
-- psql "$DATABASE_URL" -v lock_key=7882834757525140225 -f queries/advisory_lock_mine.sql
SELECT EXISTS (
    SELECT FROM pg_catalog.pg_locks l
    WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'
      AND l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
      AND l.granted
      AND l.objsubid OPERATOR(pg_catalog.=) 1
      AND ((CAST(l.classid AS pg_catalog.int8) OPERATOR(pg_catalog.<<) 32)
           OPERATOR(pg_catalog.|) CAST(l.objid AS pg_catalog.int8))
          OPERATOR(pg_catalog.=) CAST(:'lock_key' AS pg_catalog.int8)
) AS mine;
