-- refinery's history table, exactly as refinery creates it, so refinery's own CLI reads what
-- metricsctl records (and the other way round).
CREATE TABLE IF NOT EXISTS refinery_schema_history(
             version int4 PRIMARY KEY,
             name VARCHAR(255),
             applied_on VARCHAR(255),
             checksum VARCHAR(255));
