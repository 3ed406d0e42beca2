-- Whether a table (or other relation) exists in the search path, without touching it.
-- psql "$DATABASE_URL" -v relation=metrics -f queries/relation_exists.sql
SELECT pg_catalog.to_regclass(:'relation') IS NOT NULL AS relation_exists;
