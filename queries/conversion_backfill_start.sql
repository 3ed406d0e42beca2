-- `partitions enable` (online), once the mirror is on: the rows the backfill must copy are those
-- with an id up to the largest committed now (every later row is mirrored).
UPDATE metricsctl_conversion
SET phase = 'backfill',
    backfill_up_to = COALESCE(backfill_up_to, (SELECT COALESCE(max(id), 0) FROM metrics)),
    rows_estimate = (SELECT CAST(GREATEST(reltuples, 0) AS bigint) FROM pg_class
                     WHERE oid = to_regclass('metrics')),
    heartbeat = now()
RETURNING backfill_up_to, copied_up_to, rows_copied, rows_estimate;
