-- `partitions enable --abandon`: undoes an unfinished online conversion, leaving metrics as it
-- was: the mirror triggers, the table being built and the bookkeeping go.
DROP TRIGGER IF EXISTS metricsctl_mirror_insert ON metrics;
DROP TRIGGER IF EXISTS metricsctl_mirror_delete ON metrics;
DROP TRIGGER IF EXISTS metricsctl_mirror_update ON metrics;
DROP FUNCTION IF EXISTS :"schema".metricsctl_mirror_insert(), :"schema".metricsctl_mirror_delete(),
    :"schema".metricsctl_mirror_update();
DROP TABLE IF EXISTS :"schema".metrics_partitioned;
DROP TABLE IF EXISTS :"schema".metricsctl_conversion;
