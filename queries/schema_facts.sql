-- What metricsctl needs to know about the database, asked once per connection: the server, the
-- schema holding the guide's tables (:schema, from schema_candidates.sql) — who owns it and who
-- else may create objects in it — and its extensions. Written schema-qualified, like
-- schema_candidates.sql.
-- psql "$DATABASE_URL" -v schema=public -f queries/schema_facts.sql
SELECT CAST(pg_catalog.current_setting('server_version_num') AS pg_catalog.int4) AS server_version_num,
       pg_catalog.pg_is_in_recovery() AS in_recovery,
       CAST(CURRENT_USER AS pg_catalog.text) AS current_user_name,
       -- The session's statement_timeout and where it comes from (role, database, client's
       -- PGOPTIONS, configuration file): read before metricsctl sets anything of its own.
       pg_catalog.current_setting('statement_timeout') AS statement_timeout,
       (SELECT CAST(s.setting AS pg_catalog.int8) FROM pg_catalog.pg_settings s
        WHERE s.name OPERATOR(pg_catalog.=) 'statement_timeout') AS statement_timeout_ms,
       (SELECT s.source FROM pg_catalog.pg_settings s
        WHERE s.name OPERATOR(pg_catalog.=) 'statement_timeout') AS statement_timeout_source,
       CAST(pg_catalog.current_database() AS pg_catalog.text) AS database,
       (SELECT CAST(r.rolname AS pg_catalog.text) FROM pg_catalog.pg_roles r
        WHERE r.oid OPERATOR(pg_catalog.=) n.nspowner) AS schema_owner,
       -- Roles besides the schema's owner (and superusers) that may create objects in it.
       ARRAY(SELECT DISTINCT CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                  ELSE CAST(r.rolname AS pg_catalog.text) END
             FROM pg_catalog.aclexplode(n.nspacl) a
             LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
             WHERE a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
               AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner
               AND NOT COALESCE(r.rolsuper, false)
             ORDER BY 1) AS others_may_create,
       pg_catalog.has_schema_privilege(n.oid, 'CREATE') AS may_create,
       ARRAY(SELECT CAST(e.extname AS pg_catalog.text) FROM pg_catalog.pg_extension e
             ORDER BY 1) AS extensions
FROM pg_catalog.pg_namespace n
WHERE n.nspname OPERATOR(pg_catalog.=) CAST(:'schema' AS pg_catalog.name);
