-- `partitions create --dry-run`: how many rows :"default_partition" holds for [:from, :to).
SELECT count(*) AS rows FROM :"default_partition"
WHERE timestamp >= :'from' AND timestamp < :'to';
