-- One monthly partition, bounds at UTC month starts written with their offset so no TimeZone
-- setting can move them; in the guide's tables' schema (named: the search path metricsctl pins
-- has pg_catalog first).
-- psql "$DATABASE_URL" -v schema=public -v partition=metrics_2026_01 \
--   -v from='2026-01-01 00:00:00+00' -v to='2026-02-01 00:00:00+00' -f queries/partition_create.sql
CREATE TABLE :"schema".:"partition" PARTITION OF metrics
    FOR VALUES FROM (:'from') TO (:'to');
