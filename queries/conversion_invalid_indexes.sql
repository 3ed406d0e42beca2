-- `partitions enable` (online), before the swap: indexes of the table being built, or of its
-- partitions, that are not valid (an index build that did not finish, a partition's index not
-- attached). There must be none.
SELECT pg_catalog.count(*) AS invalid
FROM pg_catalog.pg_index ix
WHERE NOT ix.indisvalid
  AND (ix.indrelid = CAST(pg_catalog.to_regclass('metrics_partitioned') AS oid)
       OR ix.indrelid = ANY (SELECT inhrelid FROM pg_catalog.pg_inherits
                             WHERE inhparent = CAST(pg_catalog.to_regclass('metrics_partitioned') AS oid)));
