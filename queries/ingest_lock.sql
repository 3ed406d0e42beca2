-- Before each batch of replay, in its transaction: the locks the batch's statement will take,
-- taken by a statement of their own. A batch's parameters run to hundreds of kilobytes; a
-- statement that waits for a lock while it is parsed (behind a VACUUM FULL or an ALTER TABLE, say)
-- has not read them yet, and a server that has not read all its client sent does not see the
-- client go (killed, or gone after a stop no one could cancel): it would wait on behind the lock
-- for nobody. Waiting here, with nothing unread, client_connection_check_interval ends it within
-- a second. ROW EXCLUSIVE is what the batch's INSERTs take anyway; on partitioned metrics it
-- covers every partition.
-- psql "$DATABASE_URL" --single-transaction -f queries/ingest_lock.sql
LOCK TABLE processed_events, metrics IN ROW EXCLUSIVE MODE;
