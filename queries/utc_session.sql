-- For the rest of the transaction, show timestamps in UTC and ISO form, so partition bounds read
-- back the same whatever the server's or the session's TimeZone.
SELECT pg_catalog.set_config('TimeZone', 'UTC', true), pg_catalog.set_config('DateStyle', 'ISO, YMD', true);
