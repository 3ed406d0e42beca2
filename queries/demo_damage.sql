-- `metricsctl demo` only: two incidents as they happen for real, on two of the demo sample's own
-- events — one metric lost (its guard row stays: processed, reading gone) and one written around
-- the guard (its guard row missing).
-- psql "$DATABASE_URL" -v lost=e1 -v bypassed=e2 -f queries/demo_damage.sql
WITH lost AS (
    DELETE FROM metrics WHERE event_id OPERATOR(pg_catalog.=) :'lost' RETURNING event_id
),
bypassed AS (
    DELETE FROM processed_events WHERE event_id OPERATOR(pg_catalog.=) :'bypassed' RETURNING event_id
)
SELECT (SELECT pg_catalog.count(*) FROM lost) AS lost,
       (SELECT pg_catalog.count(*) FROM bypassed) AS bypassed;
