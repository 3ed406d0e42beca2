-- `partitions enable` (online), after conversion_reconcile_stale.sql: rows of metrics (ids up to
-- the backfill's bound) the partitioned table lacks are copied, as the backfill would have.
INSERT INTO metrics_partitioned (id, sensor_id, event_id, timestamp, value, created_at)
SELECT id, sensor_id, event_id, timestamp, value, created_at
FROM metrics m
WHERE m.id <= CAST(:'upto' AS bigint)
  AND NOT EXISTS (SELECT FROM metrics_partitioned p WHERE p.id = m.id AND p.timestamp = m.timestamp)
ON CONFLICT DO NOTHING;
