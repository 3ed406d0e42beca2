-- Ordering check, every sensor: in delivery order — (kafka_partition, kafka_offset) from
-- processed_events where recorded, else metrics.id — an event is out of order when its
-- timestamp is earlier than its predecessor's. Kafka orders events only within a partition, so
-- each (sensor, partition) is its own sequence. One row per sensor, with its worst violation.
-- (The guide's ordering query sorts by timestamp and so can never show a violation.)
-- :ingested_since leaves out events ingested (created_at) before it, so a deliberate backfill
-- can age out; out_of_order_without_kafka counts the late events that carry no Kafka
-- coordinates (written by a replay or backfill, not delivered by Kafka).
-- psql "$DATABASE_URL" -v since=-infinity -v ingested_since=-infinity \
--   -f queries/ordering_by_sensor.sql
WITH delivered AS (
    SELECT m.sensor_id,
           m.event_id,
           m.timestamp,
           p.kafka_partition,
           pg_catalog.lag(m.event_id) OVER delivery AS previous_event_id,
           pg_catalog.lag(m.timestamp) OVER delivery AS previous_timestamp
    FROM metrics m
    -- The guard row of the same event and sensor (the sensor condition lets PostgreSQL read
    -- both tables through their sensor_id indexes and hash-join them).
    LEFT JOIN processed_events p ON p.event_id OPERATOR(pg_catalog.=) m.event_id
                              AND p.sensor_id OPERATOR(pg_catalog.=) m.sensor_id
    WHERE m.timestamp >= COALESCE(CAST(:'since' AS timestamptz), '-infinity')
      AND m.created_at >= COALESCE(CAST(:'ingested_since' AS timestamptz), '-infinity')
    WINDOW delivery AS (PARTITION BY m.sensor_id, p.kafka_partition
                        ORDER BY p.kafka_offset, m.id)
),
judged AS (
    SELECT *,
           CASE WHEN timestamp < previous_timestamp
                THEN CAST(EXTRACT(EPOCH FROM previous_timestamp - timestamp) AS double precision)
           END AS regression_seconds
    FROM delivered
)
SELECT CAST(sensor_id AS text) AS sensor_id,
       pg_catalog.count(*) AS events,
       pg_catalog.count(DISTINCT kafka_partition) AS kafka_partitions,
       pg_catalog.count(regression_seconds) AS out_of_order,
       pg_catalog.count(regression_seconds) FILTER (WHERE kafka_partition IS NULL)
           AS out_of_order_without_kafka,
       pg_catalog.max(regression_seconds) AS worst_regression_seconds,
       (pg_catalog.array_agg(CAST(event_id AS text) ORDER BY regression_seconds DESC)
            FILTER (WHERE regression_seconds IS NOT NULL))[1] AS worst_event_id,
       (pg_catalog.array_agg(CAST(previous_event_id AS text) ORDER BY regression_seconds DESC)
            FILTER (WHERE regression_seconds IS NOT NULL))[1] AS worst_previous_event_id,
       (pg_catalog.array_agg(timestamp ORDER BY regression_seconds DESC)
            FILTER (WHERE regression_seconds IS NOT NULL))[1] AS worst_timestamp,
       (pg_catalog.array_agg(previous_timestamp ORDER BY regression_seconds DESC)
            FILTER (WHERE regression_seconds IS NOT NULL))[1] AS worst_previous_timestamp
FROM judged
GROUP BY sensor_id
ORDER BY sensor_id;
