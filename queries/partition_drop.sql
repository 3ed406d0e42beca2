DROP TABLE :"partition";
