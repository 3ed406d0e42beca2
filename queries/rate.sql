-- Ingestion rate: the guide's events-per-minute query, with every bucket of the last :buckets
-- present (an empty minute is a zero, not a missing row). Buckets are UTC minutes or hours (:unit
-- is 'minute' or 'hour', :step_seconds 60 or 3600). The guide counts metrics by created_at, which
-- has no index: at 50M rows that reads the whole table. The guard row is written in the same
-- transaction as its metric, so its processed_at (DEFAULT NOW(): the transaction's start, as
-- created_at's) is the same instant, and idx_processed_events_processed_at answers from the
-- window alone. Metrics written around the guard are not counted (`check duplicates` finds them).
-- psql "$DATABASE_URL" -v unit=minute -v step_seconds=60 -v buckets=60 -f queries/rate.sql
WITH span AS (
    SELECT pg_catalog.date_trunc(:'unit', pg_catalog.now(), 'UTC')
               - CAST(CAST(:'buckets' AS integer) - 1 AS double precision)
               * pg_catalog.make_interval(secs => CAST(:'step_seconds' AS double precision))
               AS first_bucket,
           pg_catalog.date_trunc(:'unit', pg_catalog.now(), 'UTC') AS last_bucket
),
counted AS (
    SELECT pg_catalog.date_trunc(:'unit', processed_at, 'UTC') AS bucket, pg_catalog.count(*) AS events
    FROM processed_events, span
    WHERE processed_at >= span.first_bucket
    GROUP BY 1
)
SELECT b.bucket, COALESCE(c.events, 0) AS events
FROM span,
     pg_catalog.generate_series(span.first_bucket, span.last_bucket,
                                pg_catalog.make_interval(secs => CAST(:'step_seconds' AS double precision)))
         AS b(bucket)
LEFT JOIN counted c ON c.bucket = b.bucket
ORDER BY b.bucket;
