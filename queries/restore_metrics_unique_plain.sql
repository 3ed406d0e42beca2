-- `metricsctl repair`: the guide's UNIQUE (event_id) of the plain metrics, put back once no event
-- id is stored twice. Locks metrics while the index builds.
ALTER TABLE metrics ADD CONSTRAINT metrics_event_id_key UNIQUE (event_id);
