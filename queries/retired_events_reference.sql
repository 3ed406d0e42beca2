-- partitions drop on the distributed layout (Citus): metricsctl_retired_events becomes a reference
-- table (a copy on every worker), so the checks can join it with the distributed tables. Once:
-- a table that already is one is left as it is.
-- psql "$DATABASE_URL" -v relation=public.metricsctl_retired_events -f queries/retired_events_reference.sql
SELECT pg_catalog.create_reference_table(CAST(:'relation' AS pg_catalog.regclass))
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition d
                  WHERE d.logicalrelid OPERATOR(pg_catalog.=) CAST(:'relation' AS pg_catalog.regclass));
