-- The first day of the current month in UTC, by the server's clock.
SELECT CAST(date_trunc('month', now() AT TIME ZONE 'UTC') AS date) AS first_day;
