-- `partitions enable` (online), before the swap: both tables hold the same rows. Run in one
-- REPEATABLE READ snapshot; the mirror writes both tables in the same transaction, so equal
-- counts, id sums and sums of row hashes in one snapshot mean equal tables. The row hash catches
-- a row changed while its backfill batch was in flight (the batch may have copied the old one).
SELECT (SELECT pg_catalog.count(*) FROM metrics) AS plain_rows,
       (SELECT pg_catalog.count(*) FROM metrics_partitioned) AS partitioned_rows,
       (SELECT CAST(COALESCE(pg_catalog.sum(id), 0) AS text) FROM metrics) AS plain_id_sum,
       (SELECT CAST(COALESCE(pg_catalog.sum(id), 0) AS text) FROM metrics_partitioned)
           AS partitioned_id_sum,
       (SELECT CAST(COALESCE(pg_catalog.sum(pg_catalog.hashtext(CAST(
                   (id, sensor_id, event_id, timestamp, value, created_at) AS text))), 0) AS text)
        FROM metrics) AS plain_row_hash,
       (SELECT CAST(COALESCE(pg_catalog.sum(pg_catalog.hashtext(CAST(
                   (id, sensor_id, event_id, timestamp, value, created_at) AS text))), 0) AS text)
        FROM metrics_partitioned) AS partitioned_row_hash;
