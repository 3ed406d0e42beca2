-- DDL: `repair` gives a key the guide's name (its index is renamed with it). Render with
-- Query::ddl; the names are identifiers.
-- psql "$DATABASE_URL" -v table_name=processed_events -v old_name=pk_processed_events \
--   -v new_name=processed_events_pkey -f queries/rename_key.sql
ALTER TABLE :"table_name" RENAME CONSTRAINT :"old_name" TO :"new_name";
