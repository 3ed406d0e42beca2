-- Moves the rows :"default_partition" holds for [:from, :to) into metricsctl_moving.
WITH moved AS (
    DELETE FROM :"default_partition"
    WHERE timestamp >= CAST(:'from' AS timestamptz) AND timestamp < CAST(:'to' AS timestamptz)
    RETURNING *
)
INSERT INTO pg_temp.metricsctl_moving SELECT * FROM moved;
