-- `partitions enable` (online), once the mirror is on: the rows the backfill must copy are those
-- with an id up to the largest committed now (every later row is mirrored). The estimate is the
-- planner's, -1 where metrics was never analyzed (then --status says the total is unknown).
UPDATE metricsctl_conversion
SET phase = 'backfill',
    backfill_up_to = COALESCE(backfill_up_to, (SELECT COALESCE(pg_catalog.max(id), 0) FROM metrics)),
    rows_estimate = (SELECT CAST(c.reltuples AS bigint) FROM pg_catalog.pg_class c
                     WHERE c.oid = CAST(pg_catalog.to_regclass('metrics') AS oid)),
    heartbeat = pg_catalog.now()
RETURNING backfill_up_to, copied_up_to, rows_copied, rows_estimate;
