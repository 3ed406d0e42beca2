-- The idempotent insert path for one batch, checked form: like ingest_batch.sql, but a metric is
-- inserted only where no metric with its event_id exists yet. metricsctl runs it
--   - on the partitioned layout always: metrics is unique only on (event_id, timestamp) there, so
--     a metric stored without its guard row under another timestamp would not stop a second copy;
--   - on the plain layout once the fast form met a metric stored without its guard row, or when
--     metrics' unique key on event_id is missing.
-- Such an event gets its guard row and keeps the metric it has. There is no ON CONFLICT: any other
-- collision (say metrics_id_seq behind max(id) after a data-only restore) fails the whole
-- statement, so a guard row is never committed without its metric.
--
-- psql "$DATABASE_URL" -v event_ids='{e1}' -v sensor_ids='{s1}' \
--   -v timestamps='{2026-01-01T00:00:00Z}' -v values='{21.5}' \
--   -v kafka_partitions='{0}' -v kafka_offsets='{42}' -v delivery_order='{1}' -f queries/ingest_batch_checked.sql
WITH batch AS (
    SELECT *
    -- What unnest(a, b, ...) stands for, spelled out: that shorthand exists only unqualified.
    FROM ROWS FROM (
        pg_catalog.unnest(CAST(:'event_ids' AS varchar[])),
        pg_catalog.unnest(CAST(:'sensor_ids' AS varchar[])),
        pg_catalog.unnest(CAST(:'timestamps' AS timestamptz[])),
        pg_catalog.unnest(CAST(:'values' AS double precision[])),
        pg_catalog.unnest(CAST(:'kafka_partitions' AS integer[])),
        pg_catalog.unnest(CAST(:'kafka_offsets' AS bigint[])),
        pg_catalog.unnest(CAST(:'delivery_order' AS integer[]))
    ) AS b(event_id, sensor_id, timestamp, value, kafka_partition, kafka_offset, delivery_order)
),
guarded AS (
    INSERT INTO processed_events (event_id, sensor_id, kafka_partition, kafka_offset)
    SELECT event_id, sensor_id, kafka_partition, kafka_offset
    FROM batch
    -- One lock order for every batch: two replays of overlapping files cannot deadlock.
    ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
),
stored AS (
    INSERT INTO metrics (sensor_id, event_id, timestamp, value)
    SELECT b.sensor_id, b.event_id, b.timestamp, b.value
    FROM batch b
    JOIN guarded g ON g.event_id OPERATOR(pg_catalog.=) b.event_id
    WHERE b.event_id OPERATOR(pg_catalog.<>) ALL (ARRAY(
        SELECT m.event_id FROM metrics m
        WHERE m.event_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT event_id FROM guarded))))
    -- metrics.id follows delivery order.
    ORDER BY b.delivery_order
    RETURNING 1
)
SELECT (SELECT pg_catalog.count(*) FROM guarded) AS guarded,
       (SELECT pg_catalog.count(*) FROM stored) AS stored;
