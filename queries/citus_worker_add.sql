-- A throwaway Citus cluster: a worker joins the coordinator's database.
-- psql "$DATABASE_URL" -v host=127.0.0.1 -v port=5433 -f queries/citus_worker_add.sql
SELECT pg_catalog.citus_add_node(CAST(:'host' AS text), CAST(:'port' AS integer)) AS node_id;
