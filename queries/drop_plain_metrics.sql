-- `partitions enable`, last step: the emptied-out plain table goes.
DROP TABLE metrics_before_partitioning;
