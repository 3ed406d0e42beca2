-- Where metrics_id_seq stands against the ids metrics holds. After a data-only restore (pg_dump
-- --data-only without the sequence, or rows copied in with their ids) the sequence can be behind
-- max(id): every insert then collides on the primary key. next_id is what nextval would return.
-- psql "$DATABASE_URL" -f queries/metrics_id_sequence.sql
WITH sequence AS (
    SELECT CAST(pg_get_serial_sequence('metrics', 'id') AS regclass) AS oid
)
SELECT CAST(sequence.oid AS text) AS sequence_name,
       COALESCE(pg_sequence_last_value(sequence.oid) + s.seqincrement, s.seqstart) AS next_id,
       (SELECT max(id) FROM metrics) AS max_id
FROM sequence
JOIN pg_sequence s ON s.seqrelid = sequence.oid;
