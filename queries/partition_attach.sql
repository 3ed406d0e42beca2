-- `partitions attach`: a month's table of its own (detached by `partitions drop --detach`) becomes
-- its partition again. PostgreSQL checks that every row belongs to the month, under the lock.
ALTER TABLE metrics ATTACH PARTITION :"schema".:"partition" FOR VALUES FROM (:'from') TO (:'to');
