-- `replay --dry-run`: the event ids this dry run has counted as "would insert" so far, so a repeat
-- in a later batch is counted once, as the real run would insert it once. Temporary, and gone
-- when the dry run's transaction ends (each writer holds one for the whole dry run): never seen
-- by other sessions, never left on a pooled server connection.
CREATE TEMPORARY TABLE IF NOT EXISTS metricsctl_dry_run_seen (event_id varchar(255) PRIMARY KEY)
    ON COMMIT DROP;
