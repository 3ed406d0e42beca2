-- `metricsctl repair`: holds off writes to processed_events (see lock_metrics_against_writes.sql).
LOCK TABLE processed_events IN SHARE ROW EXCLUSIVE MODE;
