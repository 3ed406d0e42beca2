-- `metricsctl repair`: metrics rows beyond the first per event id (possible where the unique
-- constraint was dropped or bypassed, or on the partitioned layout under two timestamps). The first
-- in delivery order stays — the lowest id, as the copies share one guard row — and the others are
-- deleted and returned with the id and value of the one kept.
-- psql "$DATABASE_URL" -f queries/repair_duplicated_metrics.sql
WITH ranked AS (
    SELECT m.tableoid AS table_oid, m.ctid AS row_address, m.id, m.event_id, m.value,
           pg_catalog.row_number() OVER (PARTITION BY m.event_id ORDER BY m.id, m.timestamp) AS copy
    FROM metrics m
    WHERE m.event_id OPERATOR(pg_catalog.=) ANY (
        SELECT event_id FROM metrics GROUP BY event_id HAVING pg_catalog.count(*) > 1
    )
),
removed AS (
    DELETE FROM metrics m
    USING ranked r
    WHERE r.copy > 1 AND m.tableoid = r.table_oid AND m.ctid = r.row_address
    RETURNING m.id, m.event_id, m.sensor_id, m.timestamp, m.value
)
SELECT removed.id, removed.event_id, removed.sensor_id, removed.timestamp, removed.value,
       kept.id AS kept_id, kept.value AS kept_value
FROM removed
JOIN ranked kept ON kept.event_id OPERATOR(pg_catalog.=) removed.event_id AND kept.copy = 1
ORDER BY removed.event_id, removed.id;
