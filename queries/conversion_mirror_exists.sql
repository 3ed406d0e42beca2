-- Whether the conversion's mirror triggers are on metrics.
SELECT count(*) = 3 AS mirrored
FROM pg_trigger
WHERE tgrelid = to_regclass('metrics')
  AND tgname IN ('metricsctl_mirror_insert', 'metricsctl_mirror_delete', 'metricsctl_mirror_update');
