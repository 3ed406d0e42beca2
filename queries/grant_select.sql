-- `metricsctl grants`: reading one more relation that exists already (a partition, metricsctl's
-- retired events, refinery's history).
GRANT SELECT ON :"schema".:"relation" TO :"role";
