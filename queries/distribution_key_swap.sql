-- metricsctl distribute, plain layout: metrics' primary key becomes (id, event_id) through the
-- index built beforehand, in a moment under lock (the index is renamed metrics_pkey).
-- Rendered with the schema.
ALTER TABLE :"schema".metrics
    DROP CONSTRAINT metrics_pkey,
    ADD CONSTRAINT metrics_pkey PRIMARY KEY USING INDEX metrics_distribution_key;
