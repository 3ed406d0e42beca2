-- Rows in one partition, counting no further than :cap (enough to say "DEFAULT holds rows"
-- without reading a huge one through). Needs SELECT on the partition itself.
-- (A column selected: Citus cannot plan a subquery of no columns.)
SELECT pg_catalog.count(*) AS rows
FROM (SELECT 1 FROM :"schema".:"partition" LIMIT CAST(:'cap' AS bigint)) AS capped;
