-- `partitions enable` (online): the partitions of the table being built, with the indexes on them
-- that a killed CREATE INDEX CONCURRENTLY left INVALID (to be dropped and built again).
SELECT CAST(c.relname AS text) AS name,
       COALESCE(pg_catalog.array_agg(CAST(ic.relname AS text) ORDER BY ic.relname)
                    FILTER (WHERE NOT ix.indisvalid),
                CAST('{}' AS text[])) AS invalid_indexes
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
LEFT JOIN pg_catalog.pg_index ix ON ix.indrelid = c.oid
LEFT JOIN pg_catalog.pg_class ic ON ic.oid = ix.indexrelid
WHERE i.inhparent = CAST(pg_catalog.to_regclass('metrics_partitioned') AS oid)
GROUP BY c.relname
ORDER BY c.relname;
