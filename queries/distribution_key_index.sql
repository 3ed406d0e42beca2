-- metricsctl distribute, plain layout, first step: the unique index the new primary key
-- (id, event_id) will use, built without blocking writers. Rendered with the schema.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS metrics_distribution_key
    ON :"schema".metrics (id, event_id);
