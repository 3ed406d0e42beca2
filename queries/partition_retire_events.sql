-- Retention, by default: the events of the partition about to be retired are noted as retired
-- (their guard rows stay in processed_events, so they are never inserted again).
INSERT INTO metricsctl_retired_events (event_id, month)
SELECT DISTINCT event_id, CAST(:'month' AS date)
FROM :"schema".:"partition"
ON CONFLICT (event_id) DO NOTHING;
