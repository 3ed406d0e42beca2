-- `metricsctl repair`: moves metrics_id_seq past every stored id (after a data-only restore it can
-- be behind max(id), and then every insert fails on metrics_pkey). Runs with metrics locked against
-- inserts (lock_metrics_against_writes.sql), so no insert takes an id in between.
-- psql "$DATABASE_URL" -f queries/repair_sequence.sql
SELECT pg_catalog.setval(CAST(pg_catalog.pg_get_serial_sequence('metrics', 'id') AS regclass),
                         pg_catalog.max(id)) AS moved_to
FROM metrics
HAVING pg_catalog.max(id) IS NOT NULL;
