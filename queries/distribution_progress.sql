-- `metricsctl distribute --status`: where the conversion of the guide's tables to the distributed
-- layout stands — metrics' primary key (Citus needs event_id in it), the unique index built for
-- it (valid or left invalid by an interrupted build).
-- psql "$DATABASE_URL" -v schema=public -f queries/distribution_progress.sql
SELECT
    (SELECT CAST(pg_catalog.array_agg(a.attname ORDER BY k.ord) AS text[])
     FROM pg_catalog.pg_constraint con
     CROSS JOIN LATERAL pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
     JOIN pg_catalog.pg_attribute a
       ON a.attrelid OPERATOR(pg_catalog.=) con.conrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
     WHERE con.conname OPERATOR(pg_catalog.=) 'metrics_pkey'
       AND con.conrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(
               pg_catalog.quote_ident(CAST(:'schema' AS text)) OPERATOR(pg_catalog.||) '.metrics'))
        AS primary_key_columns,
    (SELECT i.indisvalid
     FROM pg_catalog.pg_index i
     WHERE i.indexrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(
               pg_catalog.quote_ident(CAST(:'schema' AS text))
               OPERATOR(pg_catalog.||) '.metrics_distribution_key'))
        AS key_index_valid;
