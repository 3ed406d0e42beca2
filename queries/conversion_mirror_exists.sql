-- Whether the conversion's mirror triggers are on metrics.
SELECT pg_catalog.count(*) = 3 AS mirrored
FROM pg_catalog.pg_trigger
WHERE tgrelid = CAST(pg_catalog.to_regclass('metrics') AS oid)
  AND tgname = ANY (CAST(ARRAY['metricsctl_mirror_insert', 'metricsctl_mirror_delete',
                               'metricsctl_mirror_update'] AS name[]));
