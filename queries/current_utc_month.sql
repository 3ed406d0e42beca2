-- The first day of the current month in UTC, by the server's clock.
SELECT CAST(pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC') AS date) AS first_day;
