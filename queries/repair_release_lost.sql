-- `metricsctl repair --release-lost`: deletes the guard rows of lost metrics (missing, and not
-- retired by retention), so that the consumer or a replay delivers those events again. The
-- operator's decision: until then the guard calls them processed.
-- psql "$DATABASE_URL" -v schema=public -v retired_events=metricsctl_retired_events -f queries/retired_events_table.sql -f queries/repair_release_lost.sql
DELETE FROM processed_events p
WHERE NOT EXISTS (SELECT FROM metrics m WHERE m.event_id OPERATOR(pg_catalog.=) p.event_id)
  AND NOT EXISTS (SELECT FROM :"retired_events" r
                  WHERE r.event_id OPERATOR(pg_catalog.=) p.event_id)
RETURNING p.event_id, p.sensor_id, p.kafka_partition, p.kafka_offset;
