-- `metricsctl repair`: the guide's UNIQUE (event_id, timestamp) of the partitioned metrics, put
-- back once no event id is stored twice. Locks metrics while the indexes build.
ALTER TABLE metrics ADD CONSTRAINT metrics_event_id_timestamp_key UNIQUE (event_id, timestamp);
