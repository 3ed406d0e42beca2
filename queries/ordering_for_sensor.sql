-- Ordering check, one sensor (answered from the sensor_id indexes): its events in delivery order —
-- (kafka_partition, kafka_offset) where recorded, else metrics.id — and those whose timestamp is
-- earlier than their predecessor's, worst first. The first row always carries the totals.
-- :ingested_since leaves out events ingested (created_at) before it.
-- psql "$DATABASE_URL" -v sensor_id=sensor_123 -v since=-infinity -v ingested_since=-infinity \
--   -v limit=10 -f queries/ordering_for_sensor.sql
WITH delivered AS (
    SELECT m.event_id,
           m.timestamp,
           p.kafka_partition,
           pg_catalog.lag(m.event_id) OVER delivery AS previous_event_id,
           pg_catalog.lag(m.timestamp) OVER delivery AS previous_timestamp
    FROM metrics m
    -- The guard row of the same event and sensor (the sensor condition lets PostgreSQL read
    -- both tables through their sensor_id indexes and hash-join them).
    LEFT JOIN processed_events p ON p.event_id OPERATOR(pg_catalog.=) m.event_id
                              AND p.sensor_id OPERATOR(pg_catalog.=) m.sensor_id
    WHERE m.sensor_id OPERATOR(pg_catalog.=) :'sensor_id'
      AND m.timestamp >= COALESCE(CAST(:'since' AS timestamptz), '-infinity')
      AND m.created_at >= COALESCE(CAST(:'ingested_since' AS timestamptz), '-infinity')
    WINDOW delivery AS (PARTITION BY p.kafka_partition ORDER BY p.kafka_offset, m.id)
),
violations AS (
    SELECT CAST(event_id AS text) AS event_id, CAST(previous_event_id AS text) AS previous_event_id, timestamp, previous_timestamp, kafka_partition,
           CAST(EXTRACT(EPOCH FROM previous_timestamp - timestamp) AS double precision)
               AS regression_seconds
    FROM delivered
    WHERE timestamp < previous_timestamp
),
totals AS (
    SELECT (SELECT pg_catalog.count(*) FROM delivered) AS events,
           (SELECT pg_catalog.count(DISTINCT kafka_partition) FROM delivered) AS kafka_partitions,
           (SELECT pg_catalog.count(*) FROM violations) AS out_of_order,
           (SELECT pg_catalog.count(*) FROM violations WHERE kafka_partition IS NULL)
               AS out_of_order_without_kafka
)
SELECT t.events, t.kafka_partitions, t.out_of_order, t.out_of_order_without_kafka,
       v.event_id, v.previous_event_id, v.timestamp, v.previous_timestamp, v.regression_seconds
FROM totals t
LEFT JOIN LATERAL (
    SELECT * FROM violations
    ORDER BY regression_seconds DESC, event_id
    LIMIT CAST(:'limit' AS bigint)
) v ON true;
