-- Settings of a connection that ingests. A batch's metrics are checked against the indexes of
-- tables that grow while it runs; a plan cached while they were empty would scan them whole for
-- every event. Planning each batch afresh (a few milliseconds per batch) keeps the index probes.
SET plan_cache_mode = force_custom_plan;
