#!/usr/bin/env bash
# Checks benchmark (issue 4), rerunnable: loads ROWS metrics (default 10,000,000; with their
# processed_events rows) generated with SQL into one throwaway cluster, then times each check
# against the raw SQL it stands for (the same queries/*.sql file, run by psql), whole commands
# both, median of RUNS (default 5). Targets: each check <= 1.2x its raw SQL; `check ordering
# --sensor` <= 20 ms; `lag` <= 20 ms.
#
# Usage: bench/checks.sh        ROWS=10000000 SENSORS=1000 RUNS=5
set -euo pipefail

ROWS=${ROWS:-10000000}
SENSORS=${SENSORS:-1000}
RUNS=${RUNS:-5}

source "$(dirname "$0")/cluster.sh"

DB=bench_checks
echo "bench: loading $ROWS metrics over $SENSORS sensors" >&2
t0=$(now)
# Each sensor reports every 30 s up to now.
load_metrics "$DB" "$ROWS" "$SENSORS" "make_interval(secs => 30.0 * ((\$ROWS - g) / $SENSORS))"
load_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')

# Median wall time in ms of a command run RUNS times (after one warm-up run).
time_ms() {
  "$@" >/dev/null 2>&1 || true
  local times=""
  for _ in $(seq 1 "$RUNS"); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1 || true
    t1=$(date +%s%N)
    times="$times $(( (t1 - t0) / 1000 ))"
  done
  echo "$times" | median | awk '{ printf "%.1f", $1 / 1000 }'
}

SENSOR=sensor_00042
declare -a lines
measure() { # label, raw SQL file, psql variables..., --, metricsctl arguments...
  local label=$1 file=$2; shift 2
  local vars=()
  while [ "$1" != "--" ]; do vars+=(-v "$1"); shift; done
  shift
  echo "bench: $label" >&2
  local raw ours
  raw=$(time_ms psql_ "$URL/$DB" "${vars[@]}" -f "queries/$file")
  ours=$(time_ms "$METRICSCTL" "$@" --database-url "$URL/$DB")
  lines+=("$(printf '  %-34s %9s ms   raw SQL %9s ms   %5.2fx' "$label" "$ours" "$raw" \
    "$(awk -v a="$ours" -v b="$raw" 'BEGIN { print a / b }')")")
}

measure "check ordering --sensor $SENSOR" ordering_for_sensor.sql "sensor_id=$SENSOR" since=-infinity \
  ingested_since=-infinity limit=10 -- \
  check ordering --sensor "$SENSOR"
measure "check ordering --sensor … --since 1h" ordering_for_sensor.sql "sensor_id=$SENSOR" \
  "since=$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%SZ)" ingested_since=-infinity limit=10 -- \
  check ordering --sensor "$SENSOR" --since 1h
measure "lag" lag.sql stale_seconds=900 window_seconds=3600 latency_sample=1000 limit=10 \
  clock_tolerance_seconds=60 -- lag
measure "rate (60 minutes)" rate.sql unit=minute step_seconds=60 buckets=60 -- rate
measure "check duplicates" duplicates.sql limit=10 -- check duplicates
measure "check ordering (all sensors)" ordering_by_sensor.sql since=-infinity ingested_since=-infinity \
  -- check ordering

cat <<EOF

metricsctl checks benchmark — $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $("$PGBIN/postgres" --version)
$ROWS metrics rows over $SENSORS sensors (loaded in ${load_s} s); whole commands, median of $RUNS runs after a warm-up

EOF
printf '%s\n' "${lines[@]}"
