-- The relations of :schema metricsctl reads or writes — the guide's two tables, metricsctl's own
-- helper tables, refinery's history — with their kind, owner, what the current user may do with
-- them, their unique keys, and for metrics the sequence its id draws from. A helper table is
-- trusted only when it is an ordinary table owned by the owner of metrics (or a superuser):
-- metricsctl decides that from these rows. Written schema-qualified, like schema_candidates.sql.
-- psql "$DATABASE_URL" -v schema=public -f queries/schema_relations.sql
SELECT CAST(c.relname AS pg_catalog.text) AS name,
       CAST(c.relkind AS pg_catalog.text) AS kind,
       CAST(r.rolname AS pg_catalog.text) AS owner,
       r.rolsuper AS owner_is_superuser,
       pg_catalog.has_table_privilege(c.oid, 'SELECT') AS may_select,
       pg_catalog.has_table_privilege(c.oid, 'INSERT') AS may_insert,
       pg_catalog.has_table_privilege(c.oid, 'DELETE') AS may_delete,
       pg_catalog.pg_has_role(c.relowner, 'USAGE') AS acts_as_owner,
       ARRAY(SELECT CAST(k.conname AS pg_catalog.text) FROM pg_catalog.pg_constraint k
             WHERE k.conrelid OPERATOR(pg_catalog.=) c.oid
               AND k.contype OPERATOR(pg_catalog.=) ANY (CAST(ARRAY['p', 'u'] AS pg_catalog."char"[]))
             ORDER BY 1) AS unique_keys,
       -- Their columns, in the same order, comma-separated: a key is known by what it is, not
       -- only by its name (a restore or a hand may have named it otherwise).
       ARRAY(SELECT pg_catalog.array_to_string(ARRAY(
                        SELECT CAST(a.attname AS pg_catalog.text)
                        FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY AS u(attnum, place)
                        JOIN pg_catalog.pg_attribute a
                          ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid
                         AND a.attnum OPERATOR(pg_catalog.=) u.attnum
                        ORDER BY u.place), ',')
             FROM pg_catalog.pg_constraint k
             WHERE k.conrelid OPERATOR(pg_catalog.=) c.oid
               AND k.contype OPERATOR(pg_catalog.=) ANY (CAST(ARRAY['p', 'u'] AS pg_catalog."char"[]))
             ORDER BY k.conname) AS unique_key_columns,
       s.sequence,
       CAST(seq.relname AS pg_catalog.text) AS sequence_name,
       CASE WHEN s.sequence IS NOT NULL
            THEN pg_catalog.has_sequence_privilege(s.sequence, 'SELECT')
                 OR pg_catalog.has_sequence_privilege(s.sequence, 'USAGE') END
           AS may_read_sequence,
       CASE WHEN s.sequence IS NOT NULL
            THEN pg_catalog.has_sequence_privilege(s.sequence, 'USAGE') END AS may_use_sequence
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner
CROSS JOIN LATERAL (
    -- CASE, so that it is asked only of metrics, and only when metrics has an id column.
    SELECT CASE WHEN c.relname OPERATOR(pg_catalog.=) 'metrics'
                     AND EXISTS (SELECT FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid
                                   AND a.attname OPERATOR(pg_catalog.=) 'id'
                                   AND NOT a.attisdropped)
                THEN pg_catalog.pg_get_serial_sequence(
                         CAST(CAST(c.oid AS pg_catalog.regclass) AS pg_catalog.text), 'id')
           END AS sequence
) s
LEFT JOIN pg_catalog.pg_class seq
       ON seq.oid OPERATOR(pg_catalog.=)
          CAST(CAST(s.sequence AS pg_catalog.regclass) AS pg_catalog.oid)
WHERE n.nspname OPERATOR(pg_catalog.=) CAST(:'schema' AS pg_catalog.name)
  AND c.relname OPERATOR(pg_catalog.=) ANY (CAST(ARRAY['processed_events', 'metrics',
        'metricsctl_retired_events', 'metricsctl_conversion', 'metrics_partitioned',
        'refinery_schema_history'] AS pg_catalog.name[]))
ORDER BY c.relname;
