-- `metricsctl demo` only, on its throwaway server: another session holds metrics as a VACUUM FULL
-- would, until it rolls back.
BEGIN;
SET application_name = 'vacuum-full-metrics';
LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE;
