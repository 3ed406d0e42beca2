-- After `migrate`: what holds each name the guide gives its keys, indexes and sequence in the
-- tables' schema. PostgreSQL takes the next free name (processed_events_pkey1) when a relation
-- another role planted holds one, and CREATE INDEX IF NOT EXISTS skips it: each name must belong
-- to the index or sequence of the guide's table, or the migration rolls back.
-- psql "$DATABASE_URL" -f queries/guide_names.sql
SELECT wanted.name,
       CAST(c.relkind AS text) AS kind,
       CAST(r.rolname AS text) AS owner,
       CAST(COALESCE(indexed.relname, owning.relname) AS text) AS of_table
FROM pg_catalog.unnest(CAST(ARRAY['processed_events_pkey', 'idx_processed_events_sensor_id',
                                  'idx_processed_events_processed_at', 'metrics_pkey',
                                  'idx_metrics_sensor_id', 'idx_metrics_timestamp',
                                  'idx_metrics_sensor_timestamp', 'metrics_id_seq'] AS text[]))
         AS wanted(name)
LEFT JOIN pg_catalog.pg_class c
       ON c.relname = CAST(wanted.name AS name)
      AND c.relnamespace = (SELECT relnamespace FROM pg_catalog.pg_class
                            WHERE oid = CAST(pg_catalog.to_regclass('metrics') AS oid))
LEFT JOIN pg_catalog.pg_roles r ON r.oid = c.relowner
LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_catalog.pg_class indexed ON indexed.oid = i.indrelid
LEFT JOIN pg_catalog.pg_depend d
       ON d.objid = c.oid AND d.classid = CAST(CAST('pg_catalog.pg_class' AS regclass) AS oid)
      AND d.refclassid = CAST(CAST('pg_catalog.pg_class' AS regclass) AS oid)
      AND d.deptype = 'a' AND c.relkind = 'S'
LEFT JOIN pg_catalog.pg_class owning ON owning.oid = d.refobjid
ORDER BY 1;
