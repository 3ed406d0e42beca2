DROP TABLE :"schema".:"partition";
