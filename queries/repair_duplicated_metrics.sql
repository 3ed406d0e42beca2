-- `metricsctl repair`: metrics rows beyond the first per event id (possible where the unique
-- constraint was dropped or bypassed, or on the partitioned layout under two timestamps). The first
-- in delivery order stays — the lowest id, as the copies share one guard row — and the others are
-- deleted and returned with the id and value of the one kept. A copy is named by its key columns
-- (id, event_id, timestamp), unique in every layout — id on the plain table, (id, timestamp)
-- partitioned, (id, event_id) on Citus — not by its address (ctid): Citus cannot delete by
-- address from a ranking it computed first. The ranking is computed once (materialized), so the
-- copies removed and the one kept come from one reading, on one server and on Citus alike.
-- psql "$DATABASE_URL" -f queries/repair_duplicated_metrics.sql
WITH ranked AS MATERIALIZED (
    SELECT m.id, m.event_id, m.timestamp, m.value,
           pg_catalog.row_number() OVER (PARTITION BY m.event_id ORDER BY m.id, m.timestamp)
               AS copy
    FROM metrics m
    WHERE m.event_id OPERATOR(pg_catalog.=) ANY (
        SELECT event_id FROM metrics GROUP BY event_id HAVING pg_catalog.count(*) > 1
    )
),
removed AS (
    DELETE FROM metrics m
    USING ranked r
    WHERE r.copy > 1 AND m.event_id OPERATOR(pg_catalog.=) r.event_id
      AND m.id OPERATOR(pg_catalog.=) r.id AND m.timestamp OPERATOR(pg_catalog.=) r.timestamp
    RETURNING m.id, m.event_id, m.sensor_id, m.timestamp, m.value
)
SELECT removed.id, removed.event_id, removed.sensor_id, removed.timestamp, removed.value,
       kept.id AS kept_id, kept.value AS kept_value
FROM removed
JOIN ranked kept ON kept.event_id OPERATOR(pg_catalog.=) removed.event_id AND kept.copy = 1
ORDER BY removed.event_id, removed.id;
