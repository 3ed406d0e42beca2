-- `partitions drop --forget-guard-rows`: events retired earlier, from months before :before, are
-- forgotten — their guard rows deleted — so the consumer or a replay would store them again (into
-- DEFAULT). Reclaims processed_events' space; returns the guard rows deleted.
-- psql "$DATABASE_URL" -v before=2025-01-01 -f queries/retired_events_forget.sql
WITH forgotten AS (
    DELETE FROM metricsctl_retired_events
    WHERE month < CAST(:'before' AS date)
    RETURNING event_id
)
DELETE FROM processed_events p
USING forgotten f
WHERE p.event_id OPERATOR(pg_catalog.=) f.event_id;
