-- The UTC months metrics holds rows for, with how many: what `partitions enable` must create.
-- psql "$DATABASE_URL" -f queries/months_holding_metrics.sql
SELECT CAST(pg_catalog.date_trunc('month', timestamp AT TIME ZONE 'UTC') AS date) AS first_day,
       pg_catalog.count(*) AS rows
FROM metrics
GROUP BY 1
ORDER BY 1;
