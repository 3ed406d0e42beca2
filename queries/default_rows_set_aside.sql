-- Before a partition is created for a month, the rows DEFAULT holds for that month move out to a
-- temporary table (creating the partition over them would fail: "updated partition constraint for
-- default partition would be violated"); they go back in, into the new partition, right after.
-- Runs inside the same transaction as the creation.
CREATE TEMP TABLE IF NOT EXISTS metricsctl_moving (LIKE metrics INCLUDING DEFAULTS) ON COMMIT DROP;
