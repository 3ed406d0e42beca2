-- `metricsctl repair --release-lost`: deletes the guard rows of lost metrics (missing, and not
-- retired by retention), so that the consumer or a replay delivers those events again. The
-- operator's decision: until then the guard calls them processed.
-- psql "$DATABASE_URL" -f queries/retired_events_table.sql -f queries/repair_release_lost.sql
DELETE FROM processed_events p
WHERE NOT EXISTS (SELECT 1 FROM metrics m WHERE m.event_id = p.event_id)
  AND NOT EXISTS (SELECT 1 FROM metricsctl_retired_events r WHERE r.event_id = p.event_id)
RETURNING p.event_id, p.sensor_id, p.kafka_partition, p.kafka_offset;
