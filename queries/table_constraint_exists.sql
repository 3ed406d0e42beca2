-- Whether a table has a constraint of this name (the guide's names: processed_events_pkey,
-- metrics_event_id_key, metrics_event_id_timestamp_key).
-- psql "$DATABASE_URL" -v table_name=metrics -v constraint_name=metrics_event_id_key -f queries/table_constraint_exists.sql
SELECT EXISTS (
    SELECT
    FROM pg_catalog.pg_constraint
    WHERE conrelid = CAST(pg_catalog.to_regclass(:'table_name') AS oid) AND conname = CAST(:'constraint_name' AS name)
) AS constraint_exists;
