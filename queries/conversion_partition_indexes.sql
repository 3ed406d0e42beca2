-- `partitions enable` (online), after the backfill: one partition's copies of the guide's three
-- indexes, built CONCURRENTLY (writers go on; each statement runs on its own, outside a
-- transaction, so schema-qualified), named as PostgreSQL names them when the index is made on
-- the parent. A killed build leaves its index INVALID: conversion_invalid_indexes.sql finds it to
-- drop first.
CREATE INDEX CONCURRENTLY IF NOT EXISTS :"sensor_id_index" ON :"schema".:"partition" (sensor_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS :"timestamp_index" ON :"schema".:"partition" (timestamp);
CREATE INDEX CONCURRENTLY IF NOT EXISTS :"sensor_timestamp_index" ON :"schema".:"partition" (sensor_id, timestamp DESC);
