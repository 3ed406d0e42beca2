-- Guard rows whose metric is missing and was not retired by retention: lost metrics. Read-only.
-- psql "$DATABASE_URL" -v schema=public -v retired_events=metricsctl_retired_events -f queries/retired_events_table.sql -f queries/lost_metrics.sql
SELECT p.event_id, p.sensor_id, p.kafka_partition, p.kafka_offset
FROM processed_events p
WHERE NOT EXISTS (SELECT FROM metrics m WHERE m.event_id OPERATOR(pg_catalog.=) p.event_id)
  AND NOT EXISTS (SELECT FROM :"retired_events" r
                  WHERE r.event_id OPERATOR(pg_catalog.=) p.event_id)
ORDER BY p.event_id;
