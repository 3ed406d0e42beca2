-- Lag check: the guide's consumer-lag query (newest event timestamp against now), sensors whose
-- newest metric is older than :stale_seconds (a silent sensor), sensors with events dated more
-- than :clock_tolerance_seconds in the future (a sensor clock ahead: those events are left out
-- of the lag, which would otherwise go negative), and end-to-end latency (created_at -
-- timestamp) percentiles over the newest :latency_sample events of the last :window_seconds.
-- All of it is answered from indexes: the newest timestamp and the future-dated events from
-- idx_metrics_timestamp, the latency sample from idx_metrics_timestamp. The sensors come from the
-- guard's idx_processed_events_sensor_id, skipping from sensor to sensor (the guard is one table
-- in either layout: on partitioned metrics the same skip would probe every partition per
-- sensor); each sensor's newest metric from idx_metrics_sensor_timestamp, looked for first
-- within the last month (on partitioned metrics: the newest two partitions and DEFAULT only, one
-- index probe each) and, for a sensor silent longer, in the whole table (one probe per
-- partition). A sensor whose metrics were all retired is not
-- a sensor any more; metrics written around the guard are not seen here (`check duplicates`
-- finds them).
-- The first row always carries the totals; silent sensors follow, longest silent first.
-- Functions and the operators on sensor ids (varchar) are written pg_catalog's: in a schema others
-- may create objects in, one planted there for varchar would fit better than PostgreSQL's own.
-- psql "$DATABASE_URL" -v stale_seconds=900 -v window_seconds=3600 -v latency_sample=1000 \
--   -v limit=10 -v clock_tolerance_seconds=60 -f queries/lag.sql
WITH RECURSIVE horizon AS (
    SELECT pg_catalog.now() + pg_catalog.make_interval(secs => CAST(:'clock_tolerance_seconds' AS double precision))
               AS latest_plausible
),
sensors AS (
    (SELECT sensor_id
     FROM processed_events
     ORDER BY sensor_id
     LIMIT 1)
    UNION ALL
    SELECT next.sensor_id
    FROM sensors s
    CROSS JOIN LATERAL (
        SELECT p.sensor_id
        FROM processed_events p
        WHERE p.sensor_id OPERATOR(pg_catalog.>) s.sensor_id
        ORDER BY p.sensor_id
        LIMIT 1
    ) next
),
newest AS (
    SELECT sensor_id, newest_timestamp
    FROM (
        SELECT s.sensor_id,
               COALESCE(
                   (SELECT m.timestamp
                    FROM metrics m
                    WHERE m.sensor_id OPERATOR(pg_catalog.=) s.sensor_id
                      AND m.timestamp >= pg_catalog.now() - interval '1 month'
                    ORDER BY m.timestamp DESC
                    LIMIT 1),
                   (SELECT m.timestamp
                    FROM metrics m
                    WHERE m.sensor_id OPERATOR(pg_catalog.=) s.sensor_id
                    ORDER BY m.timestamp DESC
                    LIMIT 1)
               ) AS newest_timestamp
        FROM sensors s
        -- A fence: flattened into the filter below, every probe would run twice.
        OFFSET 0
    ) probed
    WHERE newest_timestamp IS NOT NULL
),
silent AS (
    SELECT sensor_id, newest_timestamp
    FROM newest
    WHERE newest_timestamp < pg_catalog.now() - pg_catalog.make_interval(secs => CAST(:'stale_seconds' AS double precision))
),
ahead AS (
    SELECT sensor_id,
           CAST(EXTRACT(EPOCH FROM pg_catalog.max(timestamp) - pg_catalog.now()) AS double precision) AS ahead_seconds
    FROM metrics, horizon
    WHERE timestamp > horizon.latest_plausible
    GROUP BY sensor_id
),
latency AS (
    SELECT pg_catalog.count(*) AS events,
           pg_catalog.percentile_cont(CAST(ARRAY[0.5, 0.95, 0.99] AS double precision[])) WITHIN GROUP (
               ORDER BY EXTRACT(EPOCH FROM created_at - timestamp)) AS seconds
    FROM (
        SELECT timestamp, created_at
        FROM metrics
        WHERE timestamp >= pg_catalog.now() - pg_catalog.make_interval(secs => CAST(:'window_seconds' AS double precision))
        ORDER BY timestamp DESC
        LIMIT CAST(:'latency_sample' AS bigint)
    ) recent
)
SELECT lag.latest_metric_time,
       lag.current_time,
       -- NULL on an empty table (GREATEST would turn it into 0)
       CAST(CASE WHEN lag.lag_seconds < CAST(0 AS numeric) THEN 0 ELSE lag.lag_seconds END
            AS double precision)
           AS lag_seconds,
       (SELECT pg_catalog.count(*) FROM newest) AS sensors,
       (SELECT pg_catalog.count(*) FROM silent) AS stale_sensors,
       (SELECT pg_catalog.count(*) FROM ahead) AS ahead_sensors,
       (SELECT pg_catalog.max(ahead_seconds) FROM ahead) AS clock_ahead_seconds,
       ARRAY(SELECT CAST(sensor_id AS text) FROM ahead ORDER BY ahead_seconds DESC, sensor_id
             LIMIT CAST(:'limit' AS bigint)) AS ahead_sensor_ids,
       ARRAY(SELECT ahead_seconds FROM ahead ORDER BY ahead_seconds DESC, sensor_id
             LIMIT CAST(:'limit' AS bigint)) AS ahead_sensor_seconds,
       latency.events AS latency_events,
       latency.seconds[1] AS latency_p50_seconds,
       latency.seconds[2] AS latency_p95_seconds,
       latency.seconds[3] AS latency_p99_seconds,
       CAST(stale.sensor_id AS text) AS stale_sensor_id,
       stale.newest_timestamp AS stale_newest_timestamp,
       CAST(EXTRACT(EPOCH FROM lag.current_time - stale.newest_timestamp) AS double precision)
           AS stale_silent_seconds
FROM (
    -- The guide's query, over the events that are not dated in the future (within the
    -- tolerance, a little ahead counts as now: lag 0).
    SELECT
        pg_catalog.max(timestamp) as latest_metric_time,
        pg_catalog.now() as current_time,
        EXTRACT(EPOCH FROM (pg_catalog.now() - pg_catalog.max(timestamp))) as lag_seconds
    FROM metrics
    WHERE timestamp <= (SELECT latest_plausible FROM horizon)
) lag
CROSS JOIN latency
LEFT JOIN LATERAL (
    SELECT * FROM silent
    ORDER BY newest_timestamp, sensor_id
    LIMIT CAST(:'limit' AS bigint)
) stale ON true;
