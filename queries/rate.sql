-- Ingestion rate: the guide's events-per-minute query over created_at, with every bucket of the
-- last :buckets present (an empty minute is a zero, not a missing row). Buckets are UTC minutes or
-- hours (:unit is 'minute' or 'hour', :step_seconds 60 or 3600). created_at has no index in
-- the guide's schema, so this reads the table.
-- psql "$DATABASE_URL" -v unit=minute -v step_seconds=60 -v buckets=60 -f queries/rate.sql
WITH span AS (
    SELECT date_trunc(:'unit', now(), 'UTC') - (CAST(:'buckets' AS integer) - 1)
               * make_interval(secs => CAST(:'step_seconds' AS double precision)) AS first_bucket,
           date_trunc(:'unit', now(), 'UTC') AS last_bucket
),
counted AS (
    SELECT date_trunc(:'unit', created_at, 'UTC') AS bucket, count(*) AS events
    FROM metrics, span
    WHERE created_at >= span.first_bucket
    GROUP BY 1
)
SELECT b.bucket, COALESCE(c.events, 0) AS events
FROM span,
     generate_series(span.first_bucket, span.last_bucket, make_interval(secs => CAST(:'step_seconds' AS double precision))) AS b(bucket)
LEFT JOIN counted c ON c.bucket = b.bucket
ORDER BY b.bucket;
