-- migrate --distributed: one of the guide's tables hash-distributed by event_id. metrics is
-- colocated with processed_events, so an event's guard row and its metric share a shard and the
-- idempotent insert stays one statement. :relation is the schema-qualified, quoted name.
-- psql "$DATABASE_URL" -v relation=public.processed_events -v colocate_with=none \
--   -f queries/distribute_table.sql
SELECT pg_catalog.create_distributed_table(
    CAST(:'relation' AS pg_catalog.regclass),
    'event_id',
    colocate_with => CAST(:'colocate_with' AS text));
