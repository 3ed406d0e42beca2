-- `metricsctl repair`: holds off inserts, updates and deletes on metrics (SHARE ROW EXCLUSIVE
-- conflicts with the ROW EXCLUSIVE lock every write takes) while reads go on. Bounded by
-- lock_timeout; released at the end of the transaction.
LOCK TABLE metrics IN SHARE ROW EXCLUSIVE MODE;
