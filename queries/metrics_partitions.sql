-- The partitions of metrics: name, bound as PostgreSQL prints it (run inside utc_session.sql, so
-- "FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')" or "DEFAULT"), the
-- planner's row estimate (-1 before the first ANALYZE) and the size on disk with indexes.
-- psql "$DATABASE_URL" -f queries/metrics_partitions.sql
SELECT c.relname AS name,
       pg_get_expr(c.relpartbound, c.oid) AS bound,
       CAST(c.reltuples AS bigint) AS estimated_rows,
       pg_total_relation_size(c.oid) AS bytes
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass('metrics')
ORDER BY c.relname;
