ALTER TABLE metrics DETACH PARTITION :"partition";
