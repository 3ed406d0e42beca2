-- Exact rows of one partition (`partitions list --exact`).
SELECT count(*) AS rows FROM :"partition";
