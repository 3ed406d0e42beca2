-- `replay --repair`: the checked insert path (ingest_batch_checked.sql), and besides, for the
-- batch's events whose guard row exists but whose metric is missing — lost metrics, not ones
-- retention retired — the metric is restored from the file. Still one statement: all or nothing.
-- `restored` counts those; `stored` counts every metric written.
--
-- psql "$DATABASE_URL" -v schema=public -v retired_events=metricsctl_retired_events -f queries/retired_events_table.sql -v event_ids='{e1}' -v sensor_ids='{s1}' \
--   -v timestamps='{2026-01-01T00:00:00Z}' -v values='{21.5}' \
--   -v kafka_partitions='{0}' -v kafka_offsets='{42}' -v delivery_order='{1}' -f queries/ingest_batch_repair.sql
-- Each table is asked once for the batch's ids, in a subquery of its own (hashed, pg_catalog's = ANY): no probe
-- correlated with the batch, which Citus cannot plan (the distributed layout).
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
-- The statement's snapshot does not see the guard rows it inserts: these were there before.
lost AS (
    SELECT b.event_id
    FROM batch b
    -- Not the ones this batch guards: on Citus the CTEs run one after the other, so the guard
    -- rows just inserted would be seen here (on one server they never are).
    WHERE NOT (b.event_id OPERATOR(pg_catalog.=) ANY (SELECT event_id FROM guarded))
      AND b.event_id OPERATOR(pg_catalog.=) ANY (
              SELECT p.event_id FROM processed_events p
              WHERE p.event_id OPERATOR(pg_catalog.=) ANY (CAST(:'event_ids' AS varchar[])))
      AND NOT (b.event_id OPERATOR(pg_catalog.=) ANY (
              SELECT r.event_id FROM :"retired_events" r
              WHERE r.event_id OPERATOR(pg_catalog.=) ANY (CAST(:'event_ids' AS varchar[]))))
),
stored AS (
    INSERT INTO metrics (sensor_id, event_id, timestamp, value)
    SELECT b.sensor_id, b.event_id, b.timestamp, b.value
    FROM batch b
    WHERE (b.event_id OPERATOR(pg_catalog.=) ANY (SELECT event_id FROM guarded)
           OR b.event_id OPERATOR(pg_catalog.=) ANY (SELECT event_id FROM lost))
      AND NOT (b.event_id OPERATOR(pg_catalog.=) ANY (
              SELECT m.event_id FROM metrics m
              WHERE m.event_id OPERATOR(pg_catalog.=) ANY (CAST(:'event_ids' AS varchar[]))))
    -- metrics.id follows delivery order.
    ORDER BY b.delivery_order
    RETURNING event_id
)
SELECT (SELECT pg_catalog.count(*) FROM guarded) AS guarded,
       (SELECT pg_catalog.count(*) FROM stored) AS stored,
       (SELECT pg_catalog.count(*) FROM stored
        WHERE event_id OPERATOR(pg_catalog.=) ANY (SELECT event_id FROM lost)) AS restored;
