-- Retention with --forget-guard-rows: the guard rows of the events a partition holds, deleted with
-- it. A redelivered or replayed event of that month is then stored again (into DEFAULT).
DELETE FROM processed_events p
USING :"schema".:"partition" m
WHERE p.event_id OPERATOR(pg_catalog.=) m.event_id;
