-- Guard rows whose metric is missing and was not retired by retention: lost metrics. Read-only.
-- psql "$DATABASE_URL" -f queries/retired_events_table.sql -f queries/lost_metrics.sql
SELECT p.event_id, p.sensor_id, p.kafka_partition, p.kafka_offset
FROM processed_events p
WHERE NOT EXISTS (SELECT 1 FROM metrics m WHERE m.event_id = p.event_id)
  AND NOT EXISTS (SELECT 1 FROM metricsctl_retired_events r WHERE r.event_id = p.event_id)
ORDER BY p.event_id;
