-- Retention with --forget-guard-rows: the guard rows of the events a partition holds, deleted with
-- it. A redelivered or replayed event of that month is then stored again (into DEFAULT).
DELETE FROM processed_events p
USING :"partition" m
WHERE p.event_id = m.event_id;
