-- Retention: the guard rows of the events a partition holds, deleted with it so that
-- `check duplicates` does not count them as lost metrics.
DELETE FROM processed_events p
USING :"partition" m
WHERE p.event_id = m.event_id;
