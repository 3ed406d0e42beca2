-- Exact rows of one partition (`partitions list --exact`).
SELECT pg_catalog.count(*) AS rows FROM :"schema".:"partition";
