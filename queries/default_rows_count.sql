-- `partitions create --dry-run`: how many rows :"default_partition" holds for [:from, :to).
SELECT pg_catalog.count(*) AS rows FROM :"default_partition"
WHERE timestamp >= CAST(:'from' AS timestamptz) AND timestamp < CAST(:'to' AS timestamptz);
