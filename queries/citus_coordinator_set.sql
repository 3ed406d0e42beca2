-- A throwaway Citus cluster: where the workers reach the coordinator.
-- psql "$DATABASE_URL" -v host=127.0.0.1 -v port=5432 -f queries/citus_coordinator_set.sql
SELECT pg_catalog.citus_set_coordinator_host(CAST(:'host' AS text), CAST(:'port' AS integer));
