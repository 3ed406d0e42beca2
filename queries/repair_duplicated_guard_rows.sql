-- `metricsctl repair`: processed_events rows beyond the first per event id (possible only once its
-- primary key was dropped or bypassed). The first by processed_at (then Kafka partition and
-- offset) stays; the others are deleted and returned. A row is named by its address (ctid)
-- within its event id: on the distributed layout (Citus) the join on event_id, the distribution
-- column, keeps each deletion on its shard, where an address means something.
-- psql "$DATABASE_URL" -f queries/repair_duplicated_guard_rows.sql
WITH ranked AS (
    SELECT p.ctid AS row_address, p.event_id,
           pg_catalog.row_number() OVER (
               PARTITION BY p.event_id
               ORDER BY p.processed_at, p.kafka_partition NULLS LAST, p.kafka_offset NULLS LAST, p.ctid
           ) AS copy
    FROM processed_events p
    WHERE p.event_id OPERATOR(pg_catalog.=) ANY (
        SELECT event_id FROM processed_events GROUP BY event_id HAVING pg_catalog.count(*) > 1
    )
)
DELETE FROM processed_events p
USING ranked r
WHERE r.copy > 1 AND p.event_id OPERATOR(pg_catalog.=) r.event_id AND p.ctid = r.row_address
RETURNING p.event_id, p.sensor_id, p.processed_at, p.kafka_partition, p.kafka_offset;
