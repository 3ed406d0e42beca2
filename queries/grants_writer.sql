-- `metricsctl grants --writer ROLE`: what a writer needs — the consumer, and `metricsctl replay`
-- (--dry-run and --repair included): to insert through the guard into both tables (SELECT for
-- the guard's RETURNING and the checked insert), to draw ids from metrics' sequence and read where
-- it stands, and to read metricsctl_retired_events (replay --repair and --dry-run) once it
-- exists. Inserting through the parent needs nothing on the partitions. Run as the owner of the
-- guide's tables (:owner) or a superuser.
-- psql "$DATABASE_URL" -v database=metrics -v schema=public -v sequence=metrics_id_seq \
--   -v role=writer -v owner=metrics -f queries/grants_writer.sql
GRANT CONNECT ON DATABASE :"database" TO :"role";
GRANT USAGE ON SCHEMA :"schema" TO :"role";
GRANT SELECT, INSERT ON :"schema".processed_events, :"schema".metrics TO :"role";
GRANT USAGE, SELECT ON SEQUENCE :"schema".:"sequence" TO :"role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema" GRANT SELECT ON TABLES TO :"role";
