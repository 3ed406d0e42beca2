-- After migrations ran: functions and operators the guide's tables' column defaults depend on
-- that are not PostgreSQL's own. The migrations write `DEFAULT NOW()` unqualified and run with
-- the tables' schema first on the search path (PostgreSQL creates unqualified tables in the
-- path's first schema), so a `now()` another role planted in that schema would become the
-- default, run by every insert as the inserting role. There must be none: `migrate` rolls back.
-- psql "$DATABASE_URL" -f queries/foreign_dependencies.sql
SELECT CAST(c.relname AS text) AS table_name,
       CAST(a.attname AS text) AS column_name,
       CASE WHEN d.refclassid = CAST(CAST('pg_catalog.pg_proc' AS regclass) AS oid)
            THEN CAST(CAST(d.refobjid AS regprocedure) AS text)
            ELSE CAST(CAST(d.refobjid AS regoperator) AS text) END AS object,
       CAST(r.rolname AS text) AS owner
FROM pg_catalog.pg_attrdef ad
JOIN pg_catalog.pg_class c ON c.oid = ad.adrelid
JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
JOIN pg_catalog.pg_depend d ON d.classid = CAST(CAST('pg_catalog.pg_attrdef' AS regclass) AS oid)
                           AND d.objid = ad.oid
LEFT JOIN pg_catalog.pg_proc p ON d.refclassid = CAST(CAST('pg_catalog.pg_proc' AS regclass) AS oid)
                              AND p.oid = d.refobjid
LEFT JOIN pg_catalog.pg_operator o ON d.refclassid = CAST(CAST('pg_catalog.pg_operator' AS regclass) AS oid)
                                  AND o.oid = d.refobjid
JOIN pg_catalog.pg_roles r ON r.oid = COALESCE(p.proowner, o.oprowner)
WHERE ad.adrelid = ANY (ARRAY[CAST(pg_catalog.to_regclass('metrics') AS oid),
                              CAST(pg_catalog.to_regclass('processed_events') AS oid)])
  AND COALESCE(p.pronamespace, o.oprnamespace)
      <> CAST(CAST('pg_catalog' AS regnamespace) AS oid)
ORDER BY 1, 2;
