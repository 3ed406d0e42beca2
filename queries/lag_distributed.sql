-- Lag check on the distributed layout (Citus): lag.sql's columns, the same judgement. Citus
-- plans neither lag.sql's recursive skip over the guard's sensor ids (not filtered by the
-- distribution column) nor a probe per sensor correlated with it, so here each shard reads its
-- metrics grouped by sensor, in parallel, and the coordinator merges: a scan of every shard,
-- the cost of a distributed table without an index on what it is grouped by. Everything else
-- is lag.sql's.
-- psql "$DATABASE_URL" -v stale_seconds=900 -v window_seconds=3600 -v latency_sample=1000 \
--   -v limit=10 -v clock_tolerance_seconds=60 -f queries/lag_distributed.sql
WITH horizon AS (
    SELECT pg_catalog.now() + pg_catalog.make_interval(secs => CAST(:'clock_tolerance_seconds' AS double precision))
               AS latest_plausible
),
newest AS (
    -- Each shard finds its sensors' newest metric; the coordinator merges them.
    SELECT sensor_id, pg_catalog.max(timestamp) AS newest_timestamp
    FROM metrics
    GROUP BY sensor_id
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
