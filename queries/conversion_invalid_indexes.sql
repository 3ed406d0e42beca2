-- `partitions enable` (online), before the swap: indexes of the table being built, or of its
-- partitions, that are not valid (an index build that did not finish, a partition's index not
-- attached). There must be none.
SELECT count(*) AS invalid
FROM pg_index ix
WHERE NOT ix.indisvalid
  AND (ix.indrelid = to_regclass('metrics_partitioned')
       OR ix.indrelid IN (SELECT inhrelid FROM pg_inherits
                          WHERE inhparent = to_regclass('metrics_partitioned')));
