-- Rows in one partition, counting no further than :cap (enough to say "DEFAULT holds rows"
-- without reading a huge one through).
SELECT count(*) AS rows
FROM (SELECT 1 FROM :"partition" LIMIT CAST(:'cap' AS bigint)) AS capped;
