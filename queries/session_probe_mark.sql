-- The pooling probe (src/db/pooling.rs): a marker in this server session (an empty one clears it)
-- and the server process the statement ran on. Runs outside metricsctl's pinned transactions, so
-- it is written schema-qualified.
-- psql "$DATABASE_URL" -v token=probe-1 -f queries/session_probe_mark.sql
SELECT pg_catalog.set_config('metricsctl.session_probe', :'token', false) AS marker,
       pg_catalog.pg_backend_pid() AS backend_pid;
