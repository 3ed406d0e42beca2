-- The name of a key of :table_name that is what the guide's key :constraint_name is — a primary
-- key (:primary) or unique constraint on exactly :columns, in that order — under another name
-- (a restore or a hand named it otherwise). `repair` renames it rather than adding a second.
-- psql "$DATABASE_URL" -v table_name=processed_events -v columns='{event_id}' -v primary=true \
--   -v constraint_name=processed_events_pkey -f queries/table_equivalent_key.sql
SELECT CAST(k.conname AS pg_catalog.text) AS name
FROM pg_catalog.pg_constraint k
WHERE k.conrelid OPERATOR(pg_catalog.=)
      CAST(pg_catalog.to_regclass(CAST(:'table_name' AS pg_catalog.text)) AS pg_catalog.oid)
  AND k.contype OPERATOR(pg_catalog.=)
      CASE WHEN CAST(:'primary' AS pg_catalog.bool) THEN CAST('p' AS pg_catalog."char")
           ELSE CAST('u' AS pg_catalog."char") END
  AND k.conname OPERATOR(pg_catalog.<>) CAST(:'constraint_name' AS pg_catalog.name)
  AND ARRAY(SELECT CAST(a.attname AS pg_catalog.text)
            FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY AS u(attnum, place)
            JOIN pg_catalog.pg_attribute a
              ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid
             AND a.attnum OPERATOR(pg_catalog.=) u.attnum
            ORDER BY u.place)
      OPERATOR(pg_catalog.=) CAST(:'columns' AS pg_catalog.text[])
ORDER BY k.conname
LIMIT 1;
