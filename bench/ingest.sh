#!/usr/bin/env bash
# The checked insert path on partitions (issue 20), rerunnable. One throwaway cluster, and in it
# the same ROWS metrics (and guard rows) twice: plain, and partitioned by month (MONTHS months,
# `partitions enable --offline`, then two months ahead and DEFAULT). Then, ROUNDS times, in turn:
# `replay --jobs JOBS` of EVENTS events
#   - present: every event already stored (the replay of a Kafka dump after an outage);
#   - half:    every other event already stored;
#   - new:     none stored;
# into
#   - plain:          the plain table, the fast form (ingest_batch.sql);
#   - plain checked:  the plain table, the checked form (ingest_batch_checked.sql): each writer
#                     meets a metric stored without its guard row in its first batch and checks
#                     every batch from then on, as after a guard-less write in production;
#   - partitioned:    the partitioned table, always the checked form.
# Rows a replay added are taken out again before the next, so every replay meets the same rows.
# It prints the median events/s of each, and the ratios: checked / fast, partitioned / plain.
#
# Usage: bench/ingest.sh      ROWS=5000000 MONTHS=40 SENSORS=1000 EVENTS=200000 JOBS=2 ROUNDS=3
set -euo pipefail

ROWS=${ROWS:-5000000}
MONTHS=${MONTHS:-40}
SENSORS=${SENSORS:-1000}
EVENTS=${EVENTS:-200000}
JOBS=${JOBS:-2}
ROUNDS=${ROUNDS:-3}

source "$(dirname "$0")/cluster.sh"

spread="(interval '$MONTHS months') * ((\$ROWS - g)::double precision / \$ROWS)"
for db in plain partitioned; do
  echo "bench: loading $ROWS rows over $MONTHS months ($db)" >&2
  load_metrics "$db" "$ROWS" "$SENSORS" "$spread"
done
"$METRICSCTL" partitions enable -q --offline --database-url "$URL/partitioned"
"$METRICSCTL" partitions create -q --months 2 --database-url "$URL/partitioned"
psql_ "$URL/partitioned" -c "VACUUM ANALYZE metrics" -c CHECKPOINT
partitions=$(psql_ "$URL/partitioned" -Atc "SELECT count(*) FROM pg_inherits WHERE inhparent = 'metrics'::regclass")

# The inputs: stored events (a sample of the loaded rows, in id order), new ones, and the two
# interleaved. One trigger event per sensor, stored without its guard row, leads the checked runs.
files=$WORK/files
psql_ "$URL/plain" -Atc "COPY (
  SELECT json_build_object('event_id', event_id, 'sensor_id', sensor_id,
           'timestamp', to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
           'value', value, 'kafka_partition', 0, 'kafka_offset', id)
  FROM metrics WHERE id % ($ROWS / $EVENTS) = 0 ORDER BY id LIMIT $EVENTS) TO STDOUT" >"$files/present.jsonl"
"$METRICSCTL" generate "$EVENTS" --sensors "$SENSORS" --seed 20 \
  --start "$(date -u -d '10 minutes ago' +%Y-%m-%dT%H:%M:%SZ)" --interval 1ms -o "$files/new.jsonl"
paste -d '\n' <(head -n $((EVENTS / 2)) "$files/present.jsonl") \
  <(head -n $((EVENTS / 2)) "$files/new.jsonl") >"$files/half.jsonl"
psql_ "$URL/plain" -c "CREATE TABLE triggers AS
  SELECT 'trigger-' || s AS event_id, 'sensor_' || lpad(s::text, 5, '0') AS sensor_id,
         now() - interval '20 minutes' + s * interval '1 ms' AS timestamp, 1.0::float8 AS value
  FROM generate_series(0, $SENSORS - 1) s"
psql_ "$URL/plain" -Atc "COPY (
  SELECT json_build_object('event_id', event_id, 'sensor_id', sensor_id,
           'timestamp', to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
           'value', value)
  FROM triggers) TO STDOUT" >"$files/triggers.jsonl"

plant_triggers() { # the trigger events' metrics, without their guard rows
  psql_ "$URL/plain" -c "
    DELETE FROM processed_events WHERE event_id IN (SELECT event_id FROM triggers);
    DELETE FROM metrics WHERE event_id IN (SELECT event_id FROM triggers);
    INSERT INTO metrics (sensor_id, event_id, timestamp, value)
    SELECT sensor_id, event_id, timestamp, value FROM triggers;"
}
plant_triggers

replay_rate() { # database file [first file]: events/s of the replay of file (after first, if given)
  local db=$1 file=$2 before t0 t1
  before=$(psql_ "$URL/$db" -Atc "SELECT now()")
  t0=$(now)
  "$METRICSCTL" replay -q --jobs "$JOBS" --database-url "$URL/$db" ${3:+"$3"} "$file"
  t1=$(now)
  awk -v n="$EVENTS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
  psql_ "$URL/$db" -c "WITH added AS (DELETE FROM processed_events WHERE processed_at >= '$before'
                                       RETURNING event_id)
                       DELETE FROM metrics WHERE event_id IN (SELECT event_id FROM added)" \
        -c "VACUUM ANALYZE processed_events" -c "VACUUM ANALYZE metrics"
}

declare -A rates
for round in $(seq 1 "$ROUNDS"); do
  for kind in present half new; do
    echo "bench: round $round: $kind" >&2
    rates[$kind|plain]+=" $(replay_rate plain "$files/$kind.jsonl")"
    # The triggers, leading the file, make every writer switch in its first batch; they are
    # taken out again with the rest of what the replay added.
    rates[$kind|checked]+=" $(replay_rate plain "$files/$kind.jsonl" "$files/triggers.jsonl")"
    plant_triggers
    rates[$kind|partitioned]+=" $(replay_rate partitioned "$files/$kind.jsonl")"
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
{
  printf '\nmetricsctl replay on partitions — %s cores, %s, %s, default settings\n' "$(nproc)" \
    "$(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)" "$("$PGBIN/postgres" --version)"
  printf '%s rows over %s months, %s sensors; partitioned: %s partitions (with DEFAULT); replay --jobs %s of %s events; median of %s rounds\n\n' \
    "$ROWS" "$MONTHS" "$SENSORS" "$partitions" "$JOBS" "$EVENTS" "$ROUNDS"
  printf '| events | plain (fast form) | plain, checked form | checked / fast | partitioned | partitioned / plain |\n'
  printf '|---|---|---|---|---|---|\n'
  for kind in present half new; do
    plain=$(echo "${rates[$kind|plain]}" | median)
    checked=$(echo "${rates[$kind|checked]}" | median)
    part=$(echo "${rates[$kind|partitioned]}" | median)
    printf '| %s | %s | %s | %s | %s | %s |\n' "$kind" "$plain" "$checked" "$(ratio "$checked" "$plain")" \
      "$part" "$(ratio "$part" "$plain")"
  done
  printf '\nevery round (events/s): '
  for kind in present half new; do
    printf '%s: plain%s; checked%s; partitioned%s.  ' "$kind" "${rates[$kind|plain]}" "${rates[$kind|checked]}" "${rates[$kind|partitioned]}"
  done
  printf '\n'
}
