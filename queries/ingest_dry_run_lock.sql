-- `replay --dry-run`: what ingest_lock.sql is to a batch, for the dry run's reads (ACCESS SHARE,
-- which only an ACCESS EXCLUSIVE holder makes wait).
-- psql "$DATABASE_URL" --single-transaction -f queries/ingest_dry_run_lock.sql
LOCK TABLE processed_events, metrics IN ACCESS SHARE MODE;
