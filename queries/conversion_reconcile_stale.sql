-- `partitions enable` (online), when the compare found the tables differ: rows the backfill copied
-- that metrics no longer holds as they are — deleted or changed while their batch was in flight
-- (the mirror's delete could not see the batch's uncommitted copy) — are removed. Only ids up to
-- the backfill's bound: later rows were only ever written by the mirror, in the writer's
-- transaction.
DELETE FROM metrics_partitioned p
WHERE p.id <= CAST(:'upto' AS bigint)
  AND NOT EXISTS (
      SELECT FROM metrics m
      WHERE m.id = p.id AND m.timestamp = p.timestamp
        AND m.sensor_id OPERATOR(pg_catalog.=) p.sensor_id
        AND m.event_id OPERATOR(pg_catalog.=) p.event_id
        AND m.value = p.value AND m.created_at = p.created_at);
