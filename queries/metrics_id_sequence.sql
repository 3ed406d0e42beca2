-- Where metrics_id_seq stands against the ids metrics holds. After a data-only restore (pg_dump
-- --data-only without the sequence, or rows copied in with their ids) the sequence can be behind
-- max(id): every insert then collides on the primary key. next_id is what nextval would return.
-- Reading it needs SELECT or USAGE on the sequence.
-- psql "$DATABASE_URL" -f queries/metrics_id_sequence.sql
WITH sequence AS (
    SELECT CAST(pg_catalog.pg_get_serial_sequence('metrics', 'id') AS regclass) AS relation
)
SELECT CAST(sequence.relation AS text) AS sequence_name,
       COALESCE(pg_catalog.pg_sequence_last_value(sequence.relation) + s.seqincrement, s.seqstart)
           AS next_id,
       (SELECT pg_catalog.max(id) FROM metrics) AS max_id
FROM sequence
JOIN pg_catalog.pg_sequence s ON s.seqrelid = CAST(sequence.relation AS oid);
