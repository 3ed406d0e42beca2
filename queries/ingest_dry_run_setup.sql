-- `replay --dry-run`: the event ids this session has counted as "would insert" so far, so a repeat
-- in a later batch is counted once, as the real run would insert it once. Temporary: it vanishes
-- with the session and is never seen by other sessions.
CREATE TEMPORARY TABLE IF NOT EXISTS metricsctl_dry_run_seen (event_id varchar(255) PRIMARY KEY);
