-- The partitions of metrics: name, bound as PostgreSQL prints it (run inside utc_session.sql, so
-- "FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')" or "DEFAULT"), the
-- planner's row estimate (-1 before the first ANALYZE), the size on disk with indexes, and
-- whether the current user may read it directly (a partition has privileges of its own).
-- psql "$DATABASE_URL" -f queries/metrics_partitions.sql
SELECT CAST(c.relname AS text) AS name,
       pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound,
       CAST(c.reltuples AS bigint) AS estimated_rows,
       pg_catalog.pg_total_relation_size(c.oid) AS bytes,
       pg_catalog.has_table_privilege(c.oid, 'SELECT') AS may_select
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = CAST(pg_catalog.to_regclass('metrics') AS oid)
ORDER BY c.relname;
