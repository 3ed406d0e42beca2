#!/usr/bin/env bash
# The cost curve (issue 13), rerunnable: for each size in SIZES (default "1M 10M 50M"), a plain
# database of that many metrics (and their guard rows) over SENSORS sensors spread across the last
# 36 months, loaded with SQL (not replay: it keeps the run short), and the same rows partitioned
# across 36+ monthly partitions (`partitions enable --offline` in place, once the replays' rows are
# taken out again: one copy on disk at a time). Every command is timed as
# a whole process: the median of RUNS runs after a warm-up, or the warm-up alone when it took more
# than SLOW_MS (a 3-minute check is not run five times). Replays of 1M new, 1M already-present and
# 1M half-present events into each big table run once, each beside the same replay into an empty
# table of the same layout, in the same run.
# It prints one table, command x size x layout, and the growth factor between the last two sizes.
#
# Usage: bench/scale.sh                  SIZES="1M 10M 50M" SENSORS=1000 RUNS=5 REPLAY_EVENTS=1000000
#        SIZES="1M 10M" bench/scale.sh   # a quick run
#        REPLAYS_ONLY=1 SERVER_SETTINGS="shared_buffers=4GB" SIZES=10M bench/scale.sh
#                                        # only the replays, on a server with more memory
set -euo pipefail

SIZES=${SIZES:-"1M 10M 50M"}
SENSORS=${SENSORS:-1000}
RUNS=${RUNS:-5}
SLOW_MS=${SLOW_MS:-5000}
REPLAY_EVENTS=${REPLAY_EVENTS:-1000000}
REPLAYS_ONLY=${REPLAYS_ONLY:-} # non-empty: skip the commands, time only the replays
SENSOR=sensor_00042

source "$(dirname "$0")/cluster.sh"

rows_of() { echo "$1" | sed -e 's/M$/000000/' -e 's/k$/000/'; }

forget_replayed() { # database since: take out what the replays added, so both layouts hold the same rows
  psql_ "$URL/$1" <<SQL
WITH replayed AS (DELETE FROM processed_events WHERE processed_at >= '$2' RETURNING event_id)
DELETE FROM metrics WHERE event_id IN (SELECT event_id FROM replayed);
VACUUM ANALYZE processed_events;
SQL
}

partition_in_place() { # database: the same rows, partitioned by month (one copy on disk at a time:
  # at 50M rows a second copy of both tables would not fit many disks)
  "$METRICSCTL" partitions enable -q --offline --database-url "$URL/$1"
  "$METRICSCTL" partitions create -q --months 2 --database-url "$URL/$1"
  psql_ "$URL/$1" -c "VACUUM ANALYZE metrics" -c CHECKPOINT
}

# Median wall time in ms of a command: RUNS runs after a warm-up, or the warm-up alone if slow.
# A command that could not run (exit 3, UNKNOWN: a timeout, a lost connection) prints "UNKNOWN"
# instead of a time: its wall time would be the limit's, not the command's.
time_ms() {
  local t0 t1 first times="" rc=0
  t0=$(date +%s%N); "$@" >/dev/null 2>&1 || rc=$?; t1=$(date +%s%N)
  if [ "$rc" -eq 3 ]; then echo UNKNOWN; return; fi
  first=$(( (t1 - t0) / 1000 ))
  if [ $((first / 1000)) -gt "$SLOW_MS" ]; then
    awk -v us="$first" 'BEGIN { printf "%.0f*", us / 1000 }'
    return
  fi
  for _ in $(seq 1 "$RUNS"); do
    t0=$(date +%s%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s%N)
    times="$times $(( (t1 - t0) / 1000 ))"
  done
  echo "$times" | median | awk '{ printf "%.1f", $1 / 1000 }'
}

declare -A result
declare -a labels=()
record() { # label size layout value
  local key="$1|$2|$3"
  result[$key]=$4
  case " ${labels[*]:-} " in *" $1 "*) ;; *) labels+=("$1") ;; esac
}

# The commands of the cost curve: label, then arguments.
COMMANDS=(
  "migrate (no-op)|migrate -q"
  "check (all)|check"
  "check --since 1h|check --since 1h"
  "check ordering --sensor|check ordering --sensor $SENSOR"
  "check ordering --sensor --since 1h|check ordering --sensor $SENSOR --since 1h"
  "check duplicates|check duplicates"
  "check duplicates --since 1h|check duplicates --since 1h"
  "check partitions|check partitions"
  "lag|lag"
  "rate|rate"
  "partitions create --months 3|partitions create --months 3"
  "partitions list|partitions list"
)
labels=()
for entry in "${COMMANDS[@]}"; do labels+=("${entry%%|*}"); done
for prefix in "replay" "empty table: replay"; do
  for kind in new present "present, the guide's guard SQL" "half present"; do
    labels+=("$prefix $kind (events/s)")
  done
done

replay_rate() { # database file: events/s of one replay (its JSON summary in $WORK/replay.json)
  local t0 t1
  t0=$(now)
  "$METRICSCTL" replay -q --format json --database-url "$URL/$1" "$2" >"$WORK/replay.json"
  t1=$(now)
  awk -v n="$REPLAY_EVENTS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}

echo "bench: generating $REPLAY_EVENTS new events for the replays, and as many others" >&2
new_start=$(date -u -d '10 minutes ago' +%Y-%m-%dT%H:%M:%SZ)
"$METRICSCTL" generate "$REPLAY_EVENTS" --sensors "$SENSORS" --seed 13 \
  --start "$new_start" --interval 1ms -o "$WORK/files/new.jsonl"
# The same events as CSV, for the guide's own guard statement run by psql.
"$METRICSCTL" generate "$REPLAY_EVENTS" --sensors "$SENSORS" --seed 13 \
  --start "$new_start" --interval 1ms --format csv -o "$WORK/files/new.csv"
"$METRICSCTL" generate "$REPLAY_EVENTS" --sensors "$SENSORS" --seed 14 \
  --start "$(date -u -d '9 minutes ago' +%Y-%m-%dT%H:%M:%SZ)" --interval 1ms -o "$WORK/files/other.jsonl"
# Half present once new.jsonl is stored: its events and others, every other line.
paste -d '\n' <(head -n $((REPLAY_EVENTS / 2)) "$WORK/files/new.jsonl") \
  <(head -n $((REPLAY_EVENTS / 2)) "$WORK/files/other.jsonl") >"$WORK/files/half.jsonl"

# The baseline for stored events: the guide's guard statement itself (INSERT ... ON CONFLICT
# (event_id) DO NOTHING) for the same events, by psql from a temporary table, one statement: what
# any idempotent consumer pays per stored event at this size, whatever it is written in.
guide_guard_rate() { # database: events/s of the guide's guard insert of new.csv (all stored)
  psql_ "$URL/$1" -At <<SQL | tail -1
CREATE TEMP TABLE staged (event_id text, sensor_id text, ts text, value float8,
                          kafka_partition int, kafka_offset bigint);
\copy staged FROM '$WORK/files/new.csv' CSV HEADER
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
INSERT INTO processed_events (event_id, sensor_id, kafka_partition, kafka_offset)
SELECT event_id, sensor_id, kafka_partition, kafka_offset FROM staged
ON CONFLICT (event_id) DO NOTHING;
SELECT round($REPLAY_EVENTS / (extract(epoch FROM clock_timestamp()) - :t0));
SQL
}

# The three replays, in this order: new events, the same again (present), half present; after
# the present one, the guide's guard statement for the same stored events.
replays() { # label-prefix size layout database
  echo "bench: $2 $3: replay of $REPLAY_EVENTS new events" >&2
  record "$1 new (events/s)" "$2" "$3" "$(replay_rate "$4" "$WORK/files/new.jsonl")"
  echo "bench: $2 $3: replay of the same $REPLAY_EVENTS events again" >&2
  record "$1 present (events/s)" "$2" "$3" "$(replay_rate "$4" "$WORK/files/new.jsonl")"
  echo "bench: $2 $3: the guide's guard insert of the same $REPLAY_EVENTS events (psql)" >&2
  record "$1 present, the guide's guard SQL (events/s)" "$2" "$3" "$(guide_guard_rate "$4")"
  echo "bench: $2 $3: replay of $REPLAY_EVENTS events, half of them present" >&2
  record "$1 half present (events/s)" "$2" "$3" "$(replay_rate "$4" "$WORK/files/half.jsonl")"
}

run_commands() { # size layout: every command of the cost curve, then the two replays
  local size=$1 layout=$2 label entry
  local -a args
  for entry in "${COMMANDS[@]}"; do
    label=${entry%%|*}
    [ -n "$REPLAYS_ONLY" ] && continue
    read -r -a args <<<"${entry#*|}"
    if [ "$layout" = plain ] && [[ "$label" == *partition* ]]; then
      record "$label" "$size" "$layout" "-"
      continue
    fi
    echo "bench: $size $layout: $label" >&2
    # --timeout 0: no limit (check, lag and rate stop at 30 s by default; a full check at 50M takes longer)
    record "$label" "$size" "$layout" \
      "$(time_ms "$METRICSCTL" "${args[@]}" --timeout 0 --database-url "$URL/scale")"
  done
  replays "replay" "$size" "$layout" scale
  # Beside an empty table of the same layout, in the same run.
  local empty="empty_$layout"
  psql_ "$URL/postgres" -c "DROP DATABASE IF EXISTS $empty" -c "CREATE DATABASE $empty"
  if [ "$layout" = partitioned ]; then
    "$METRICSCTL" migrate -q --partitioned --database-url "$URL/$empty"
  else
    "$METRICSCTL" migrate -q --database-url "$URL/$empty"
  fi
  replays "empty table: replay" "$size" "$layout" "$empty"
  psql_ "$URL/postgres" -c "DROP DATABASE $empty"
}

declare -A load_s
for size in $SIZES; do
  rows=$(rows_of "$size")
  echo "bench: $size: loading $rows rows (plain)" >&2
  t0=$(now)
  # Every sensor reports at a steady pace over the last 36 months up to now.
  load_metrics scale "$rows" "$SENSORS" "(interval '36 months') * ((\$ROWS - g)::double precision / \$ROWS)"
  load_s[$size|plain]=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
  before_replays=$(psql_ "$URL/scale" -Atc "SELECT now()")
  run_commands "$size" plain
  echo "bench: $size: the same rows partitioned" >&2
  t0=$(now)
  forget_replayed scale "$before_replays"
  partition_in_place scale
  load_s[$size|partitioned]=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
  result[rows|$size]=$(psql_ "$URL/scale" -Atc "SELECT count(*) FROM metrics")
  result[partitions|$size]=$(psql_ "$URL/scale" -Atc "SELECT count(*) FROM pg_inherits WHERE inhparent = 'metrics'::regclass")
  run_commands "$size" partitioned
  psql_ "$URL/postgres" -c "DROP DATABASE scale"
done

sizes=($SIZES)
last=${sizes[${#sizes[@]} - 1]}
before_last=""
[ ${#sizes[@]} -ge 2 ] && before_last=${sizes[${#sizes[@]} - 2]}
{
  printf '\nmetricsctl cost curve — %s cores, %s, %s, %s\n' "$(nproc)" \
    "$(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)" "$("$PGBIN/postgres" --version)" \
    "${SERVER_SETTINGS:-default settings}"
  printf '%s sensors over 36 months; partitioned: ' "$SENSORS"
  for size in $SIZES; do printf '%s partitions at %s (%s rows)  ' "${result[partitions|$size]}" "$size" "${result[rows|$size]}"; done
  printf '\nms per command (whole process, median of %s after a warm-up; * = one run, the warm-up, over %s ms)\n' "$RUNS" "$SLOW_MS"
  printf 'load: '
  for size in $SIZES; do printf '%s plain %s s, partitioned +%s s   ' "$size" "${load_s[$size|plain]}" "${load_s[$size|partitioned]}"; done
  printf '\nreplays of %s events (--jobs 2): new, the same again (present), half present; each beside an empty table of the same layout\n\n' \
    "$REPLAY_EVENTS"
  printf '| %-44s |' command
  for size in $SIZES; do printf ' %9s plain | %9s part. |' "$size" "$size"; done
  [ -n "$before_last" ] && printf ' %s→%s plain | part. | part./plain at %s |' "$before_last" "$last" "$last"
  printf '\n|%s|' "$(printf -- '-%.0s' $(seq 1 46))"
  for _ in $SIZES; do printf '%s|%s|' "-----------------" "-----------------"; done
  [ -n "$before_last" ] && printf -- '----------|------|------|'
  printf '\n'
  for label in "${labels[@]}"; do
    printf '| %-44s |' "$label"
    for size in $SIZES; do
      printf ' %15s | %15s |' "${result[$label|$size|plain]:-}" "${result[$label|$size|partitioned]:-}"
    done
    if [ -n "$before_last" ]; then
      growth() { awk -v a="${1%\*}" -v b="${2%\*}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", b / a; else printf "-" }'; }
      printf ' %8s | %6s | %6s |' \
        "$(growth "${result[$label|$before_last|plain]}" "${result[$label|$last|plain]}")" \
        "$(growth "${result[$label|$before_last|partitioned]}" "${result[$label|$last|partitioned]}")" \
        "$(growth "${result[$label|$last|plain]}" "${result[$label|$last|partitioned]}")"
    fi
    printf '\n'
  done
}
exit 0
