-- Lag check: the guide's consumer-lag query (newest event timestamp against now), sensors whose
-- newest metric is older than :stale_seconds (a silent sensor), sensors with events dated more
-- than :clock_tolerance_seconds in the future (a sensor clock ahead: those events are left out
-- of the lag, which would otherwise go negative), and end-to-end latency (created_at -
-- timestamp) percentiles over the newest :latency_sample events of the last :window_seconds.
-- All of it is answered from indexes: the newest timestamp and the future-dated events from
-- idx_metrics_timestamp, each sensor's newest from idx_metrics_sensor_timestamp (one probe per
-- sensor, skipping from sensor to sensor), the latency sample from idx_metrics_timestamp.
-- The first row always carries the totals; silent sensors follow, longest silent first.
-- psql "$DATABASE_URL" -v stale_seconds=900 -v window_seconds=3600 -v latency_sample=1000 \
--   -v limit=10 -v clock_tolerance_seconds=60 -f queries/lag.sql
WITH RECURSIVE horizon AS (
    SELECT now() + make_interval(secs => CAST(:'clock_tolerance_seconds' AS double precision))
               AS latest_plausible
),
newest AS (
    (SELECT sensor_id, timestamp AS newest_timestamp
     FROM metrics
     ORDER BY sensor_id, timestamp DESC
     LIMIT 1)
    UNION ALL
    SELECT next.sensor_id, next.newest_timestamp
    FROM newest n
    CROSS JOIN LATERAL (
        SELECT m.sensor_id, m.timestamp AS newest_timestamp
        FROM metrics m
        WHERE m.sensor_id > n.sensor_id
        ORDER BY m.sensor_id, m.timestamp DESC
        LIMIT 1
    ) next
),
silent AS (
    SELECT sensor_id, newest_timestamp
    FROM newest
    WHERE newest_timestamp < now() - make_interval(secs => CAST(:'stale_seconds' AS double precision))
),
ahead AS (
    SELECT sensor_id,
           CAST(EXTRACT(EPOCH FROM max(timestamp) - now()) AS double precision) AS ahead_seconds
    FROM metrics, horizon
    WHERE timestamp > horizon.latest_plausible
    GROUP BY sensor_id
),
latency AS (
    SELECT count(*) AS events,
           percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
               ORDER BY EXTRACT(EPOCH FROM created_at - timestamp)) AS seconds
    FROM (
        SELECT timestamp, created_at
        FROM metrics
        WHERE timestamp >= now() - make_interval(secs => CAST(:'window_seconds' AS double precision))
        ORDER BY timestamp DESC
        LIMIT CAST(:'latency_sample' AS bigint)
    ) recent
)
SELECT lag.latest_metric_time,
       lag.current_time,
       -- NULL on an empty table (GREATEST would turn it into 0)
       CAST(CASE WHEN lag.lag_seconds < 0 THEN 0 ELSE lag.lag_seconds END AS double precision)
           AS lag_seconds,
       (SELECT count(*) FROM newest) AS sensors,
       (SELECT count(*) FROM silent) AS stale_sensors,
       (SELECT count(*) FROM ahead) AS ahead_sensors,
       (SELECT max(ahead_seconds) FROM ahead) AS clock_ahead_seconds,
       ARRAY(SELECT sensor_id FROM ahead ORDER BY ahead_seconds DESC, sensor_id
             LIMIT CAST(:'limit' AS bigint)) AS ahead_sensor_ids,
       ARRAY(SELECT ahead_seconds FROM ahead ORDER BY ahead_seconds DESC, sensor_id
             LIMIT CAST(:'limit' AS bigint)) AS ahead_sensor_seconds,
       latency.events AS latency_events,
       latency.seconds[1] AS latency_p50_seconds,
       latency.seconds[2] AS latency_p95_seconds,
       latency.seconds[3] AS latency_p99_seconds,
       stale.sensor_id AS stale_sensor_id,
       stale.newest_timestamp AS stale_newest_timestamp,
       CAST(EXTRACT(EPOCH FROM lag.current_time - stale.newest_timestamp) AS double precision)
           AS stale_silent_seconds
FROM (
    -- The guide's query, over the events that are not dated in the future (within the
    -- tolerance, a little ahead counts as now: lag 0).
    SELECT
        MAX(timestamp) as latest_metric_time,
        NOW() as current_time,
        EXTRACT(EPOCH FROM (NOW() - MAX(timestamp))) as lag_seconds
    FROM metrics
    WHERE timestamp <= (SELECT latest_plausible FROM horizon)
) lag
CROSS JOIN latency
LEFT JOIN LATERAL (
    SELECT * FROM silent
    ORDER BY newest_timestamp, sensor_id
    LIMIT CAST(:'limit' AS bigint)
) stale ON true;
