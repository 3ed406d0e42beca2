-- refinery's history table, exactly as refinery creates it, so refinery's own CLI reads what
-- metricsctl records (and the other way round). In the guide's tables' schema, named so: the
-- search path metricsctl pins has pg_catalog first.
CREATE TABLE IF NOT EXISTS :"schema".refinery_schema_history(
             version int4 PRIMARY KEY,
             name VARCHAR(255),
             applied_on VARCHAR(255),
             checksum VARCHAR(255));
