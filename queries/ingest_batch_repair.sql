-- `replay --repair`: the checked insert path (ingest_batch_checked.sql), and besides, for the
-- batch's events whose guard row exists but whose metric is missing — lost metrics, not ones
-- retention retired — the metric is restored from the file. Still one statement: all or nothing.
-- `restored` counts those; `stored` counts every metric written.
--
-- psql "$DATABASE_URL" -f queries/retired_events_table.sql -v event_ids='{e1}' -v sensor_ids='{s1}' \
--   -v timestamps='{2026-01-01T00:00:00Z}' -v values='{21.5}' \
--   -v kafka_partitions='{0}' -v kafka_offsets='{42}' -v delivery_order='{1}' -f queries/ingest_batch_repair.sql
WITH batch AS (
    SELECT *
    FROM unnest(
        CAST(:'event_ids' AS varchar[]),
        CAST(:'sensor_ids' AS varchar[]),
        CAST(:'timestamps' AS timestamptz[]),
        CAST(:'values' AS double precision[]),
        CAST(:'kafka_partitions' AS integer[]),
        CAST(:'kafka_offsets' AS bigint[]),
        CAST(:'delivery_order' AS integer[])
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
-- The statement's snapshot does not see the guard rows it inserts: these were there before.
lost AS (
    SELECT b.event_id
    FROM batch b
    WHERE EXISTS (SELECT 1 FROM processed_events p WHERE p.event_id = b.event_id)
      AND NOT EXISTS (SELECT 1 FROM metricsctl_retired_events r WHERE r.event_id = b.event_id)
),
stored AS (
    INSERT INTO metrics (sensor_id, event_id, timestamp, value)
    SELECT b.sensor_id, b.event_id, b.timestamp, b.value
    FROM batch b
    WHERE (b.event_id IN (SELECT event_id FROM guarded) OR b.event_id IN (SELECT event_id FROM lost))
      AND NOT EXISTS (SELECT 1 FROM metrics m WHERE m.event_id = b.event_id)
    -- metrics.id follows delivery order.
    ORDER BY b.delivery_order
    RETURNING event_id
)
SELECT (SELECT count(*) FROM guarded) AS guarded,
       (SELECT count(*) FROM stored) AS stored,
       (SELECT count(*) FROM stored WHERE event_id IN (SELECT event_id FROM lost)) AS restored;
