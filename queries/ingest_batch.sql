-- The idempotent insert path for one batch of events: the guard first, then the metrics of
-- exactly the events the guard let through. One statement, so one transaction: a crash at any
-- instant leaves no processed_events row without its metric, and a rerun skips what committed.
-- Used by `metricsctl replay`; the consumer must follow the same contract (see README).
--
-- This is the fast form: metrics are inserted without ON CONFLICT, because an event the guard
-- has just accepted normally has no metric yet, and a conflict-checked insert costs about 40%
-- more. If a metric exists without its guard row (something bypassed the guard), this statement
-- fails as a whole with unique_violation and metricsctl runs ingest_batch_checked.sql instead.
--
-- psql "$DATABASE_URL" -v event_ids='{e1}' -v sensor_ids='{s1}' \
--   -v timestamps='{2026-01-01T00:00:00Z}' -v values='{21.5}' \
--   -v kafka_partitions='{0}' -v kafka_offsets='{42}' -v delivery_order='{1}' -f queries/ingest_batch.sql
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
    -- metrics.id follows delivery order.
    ORDER BY b.delivery_order
    RETURNING 1
)
SELECT (SELECT pg_catalog.count(*) FROM guarded) AS guarded,
       (SELECT pg_catalog.count(*) FROM stored) AS stored;
