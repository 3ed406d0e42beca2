-- `metricsctl grants --apply`, before it commits: what a role may now do with the guide's
-- objects, so that a GRANT the server only warned about ("no privileges were granted": the one
-- granting holds no grant option) is not reported as done.
-- psql "$DATABASE_URL" -v role=monitor -f queries/role_privileges.sql
SELECT pg_catalog.has_database_privilege(CAST(:'role' AS name), pg_catalog.current_database(), 'CONNECT')
           AS connect,
       pg_catalog.has_schema_privilege(CAST(:'role' AS name),
           (SELECT relnamespace FROM pg_catalog.pg_class
            WHERE oid = CAST(pg_catalog.to_regclass('metrics') AS oid)), 'USAGE') AS schema_usage,
       pg_catalog.has_table_privilege(CAST(:'role' AS name),
           CAST(pg_catalog.to_regclass('processed_events') AS oid), 'SELECT')
       AND pg_catalog.has_table_privilege(CAST(:'role' AS name),
           CAST(pg_catalog.to_regclass('metrics') AS oid), 'SELECT') AS select_tables,
       pg_catalog.has_table_privilege(CAST(:'role' AS name),
           CAST(pg_catalog.to_regclass('processed_events') AS oid), 'INSERT')
       AND pg_catalog.has_table_privilege(CAST(:'role' AS name),
           CAST(pg_catalog.to_regclass('metrics') AS oid), 'INSERT') AS insert_tables,
       pg_catalog.has_sequence_privilege(CAST(:'role' AS name),
           CAST(CAST(pg_catalog.pg_get_serial_sequence('metrics', 'id') AS regclass) AS oid), 'SELECT')
           AS select_sequence,
       pg_catalog.has_sequence_privilege(CAST(:'role' AS name),
           CAST(CAST(pg_catalog.pg_get_serial_sequence('metrics', 'id') AS regclass) AS oid), 'USAGE')
           AS use_sequence;
