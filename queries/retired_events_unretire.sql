-- `partitions attach`: the events of a re-attached month are stored again, not retired.
DELETE FROM metricsctl_retired_events WHERE month = CAST(:'month' AS date);
