-- The pooling probe (src/db/pooling.rs): the server process this statement runs on, and whether
-- its session holds the marker session_probe_mark.sql set.
-- psql "$DATABASE_URL" -v token=probe-1 -f queries/session_probe_read.sql
SELECT pg_catalog.pg_backend_pid() AS backend_pid,
       COALESCE(pg_catalog.current_setting('metricsctl.session_probe', true), '')
           OPERATOR(pg_catalog.=) CAST(:'token' AS text) AS marked;
