-- `partitions enable` (online): from now on every write to metrics is made to the partitioned
-- table too, in the same statement and transaction (statement triggers with transition tables:
-- one set-based insert per statement, not one per row). Creating the triggers takes a SHARE ROW
-- EXCLUSIVE lock on metrics for an instant (bounded by lock_timeout): writers in flight finish
-- first, so every row committed before is there for the backfill and every row after is mirrored.
-- The functions run with the writer's search path, so they name everything schema-qualified.
CREATE OR REPLACE FUNCTION :"schema".metricsctl_mirror_insert() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO :"schema".metrics_partitioned (id, sensor_id, event_id, timestamp, value, created_at)
    SELECT id, sensor_id, event_id, timestamp, value, created_at FROM mirrored_new;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION :"schema".metricsctl_mirror_delete() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM :"schema".metrics_partitioned p USING mirrored_old o
    WHERE p.id = o.id AND p.timestamp = o.timestamp;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION :"schema".metricsctl_mirror_update() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM :"schema".metrics_partitioned p USING mirrored_old o
    WHERE p.id = o.id AND p.timestamp = o.timestamp;
    INSERT INTO :"schema".metrics_partitioned (id, sensor_id, event_id, timestamp, value, created_at)
    SELECT id, sensor_id, event_id, timestamp, value, created_at FROM mirrored_new;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS metricsctl_mirror_insert ON metrics;
DROP TRIGGER IF EXISTS metricsctl_mirror_delete ON metrics;
DROP TRIGGER IF EXISTS metricsctl_mirror_update ON metrics;
CREATE TRIGGER metricsctl_mirror_insert AFTER INSERT ON metrics
    REFERENCING NEW TABLE AS mirrored_new
    FOR EACH STATEMENT EXECUTE FUNCTION :"schema".metricsctl_mirror_insert();
CREATE TRIGGER metricsctl_mirror_delete AFTER DELETE ON metrics
    REFERENCING OLD TABLE AS mirrored_old
    FOR EACH STATEMENT EXECUTE FUNCTION :"schema".metricsctl_mirror_delete();
CREATE TRIGGER metricsctl_mirror_update AFTER UPDATE ON metrics
    REFERENCING OLD TABLE AS mirrored_old NEW TABLE AS mirrored_new
    FOR EACH STATEMENT EXECUTE FUNCTION :"schema".metricsctl_mirror_update();
