-- Puts the set-aside rows back through the parent, which routes them into their new partition.
WITH back AS (DELETE FROM pg_temp.metricsctl_moving RETURNING *)
INSERT INTO metrics SELECT * FROM back;
