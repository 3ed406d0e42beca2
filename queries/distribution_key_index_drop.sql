-- metricsctl distribute: an index build that was interrupted leaves it invalid; it is dropped and
-- built again. Rendered with the schema.
DROP INDEX CONCURRENTLY IF EXISTS :"schema".metrics_distribution_key;
