-- `metricsctl grants --monitor ROLE`: what a monitoring role needs for check, lag, rate and
-- migrate status — reading, nothing more. Run as the owner of the guide's tables (:owner) or a
-- superuser. The sequence is read by `check sequence`; partitions have privileges of their own
-- (the partitions check counts DEFAULT's rows, `partitions list --exact` every partition's), so
-- each existing one is granted, and those created later by :owner are covered by the default
-- privileges, as are metricsctl_retired_events and refinery's history once they exist.
-- psql "$DATABASE_URL" -v database=metrics -v schema=public -v sequence=metrics_id_seq \
--   -v role=monitor -v owner=metrics -f queries/grants_monitor.sql
GRANT CONNECT ON DATABASE :"database" TO :"role";
GRANT USAGE ON SCHEMA :"schema" TO :"role";
GRANT SELECT ON :"schema".processed_events, :"schema".metrics TO :"role";
GRANT SELECT ON SEQUENCE :"schema".:"sequence" TO :"role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema" GRANT SELECT ON TABLES TO :"role";
