ALTER TABLE metrics DETACH PARTITION :"schema".:"partition";
