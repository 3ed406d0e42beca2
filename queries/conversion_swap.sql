-- `partitions enable` (online), last step, one short transaction: metrics is locked (bounded by
-- lock_timeout; writers queue behind for the milliseconds it takes), the plain table — identical
-- to the partitioned one, as conversion_compare.sql showed — is dropped with its mirror triggers,
-- and the partitioned table takes its name, the guide's constraint and index names, and the id
-- sequence. Nothing is copied here.
LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE;
ALTER SEQUENCE metrics_id_seq OWNED BY NONE;
DROP TABLE metrics;
DROP FUNCTION :"schema".metricsctl_mirror_insert(), :"schema".metricsctl_mirror_delete(),
    :"schema".metricsctl_mirror_update();
ALTER TABLE metrics_partitioned RENAME TO metrics;
ALTER TABLE metrics RENAME CONSTRAINT metrics_partitioned_pkey TO metrics_pkey;
ALTER TABLE metrics
    RENAME CONSTRAINT metrics_partitioned_event_id_timestamp_key TO metrics_event_id_timestamp_key;
ALTER INDEX idx_metrics_partitioned_sensor_id RENAME TO idx_metrics_sensor_id;
ALTER INDEX idx_metrics_partitioned_timestamp RENAME TO idx_metrics_timestamp;
ALTER INDEX idx_metrics_partitioned_sensor_timestamp RENAME TO idx_metrics_sensor_timestamp;
-- PostgreSQL 18 names NOT NULL constraints after their table: metrics_partitioned_id_not_null
-- becomes the guide's metrics_id_not_null (no rows on older versions). Renamed on the parent only:
-- the partitions' inherited constraints follow it.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT CAST(conname AS text) AS conname
        FROM pg_catalog.pg_constraint
        WHERE contype = 'n' AND conrelid = CAST(CAST('metrics' AS regclass) AS oid)
          AND CAST(conname AS text) LIKE 'metrics\_partitioned\_%'
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE metrics RENAME CONSTRAINT %I TO %I', c.conname,
                                  'metrics_' OPERATOR(pg_catalog.||)
                                  pg_catalog.substr(c.conname, pg_catalog.length('metrics_partitioned_') + 1));
    END LOOP;
END $$;
ALTER SEQUENCE metrics_id_seq OWNED BY metrics.id;
DROP TABLE metricsctl_conversion;
