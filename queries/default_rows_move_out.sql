-- Moves the rows :"default_partition" holds for [:from, :to) into metricsctl_moving.
WITH moved AS (
    DELETE FROM :"default_partition"
    WHERE timestamp >= :'from' AND timestamp < :'to'
    RETURNING *
)
INSERT INTO metricsctl_moving SELECT * FROM moved;
