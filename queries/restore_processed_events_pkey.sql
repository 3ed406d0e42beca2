-- `metricsctl repair`: the guide's primary key of processed_events, put back once no event id is
-- there twice. Locks processed_events while the index builds.
ALTER TABLE processed_events ADD CONSTRAINT processed_events_pkey PRIMARY KEY (event_id);
