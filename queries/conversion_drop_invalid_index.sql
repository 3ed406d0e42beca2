-- `partitions enable` (online): an index a killed CREATE INDEX CONCURRENTLY left INVALID, dropped
-- without blocking writers (on its own, outside a transaction, so schema-qualified) so it can be
-- built again.
DROP INDEX CONCURRENTLY IF EXISTS :"schema".:"index";
