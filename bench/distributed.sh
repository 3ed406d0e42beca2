#!/usr/bin/env bash
# The distributed layout (issue 22), rerunnable: replay into the tables distributed on Citus (a
# throwaway coordinator and two workers on this machine, `metricsctl demo --distributed --keep`)
# beside a single server (`metricsctl demo --keep`), in the same run, then each check's time on
# both. Three PostgreSQL servers on the cores one would have: the ratio shows Citus' overhead,
# not scale-out.
#
# Usage: bench/distributed.sh            EVENTS=200000 RUNS=3 JOBS=2
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-200000}
RUNS=${RUNS:-3}
JOBS=${JOBS:-2}

cargo build --release --quiet
bin=$PWD/target/release/metricsctl
work=$(mktemp -d)
removals=()
cleanup() {
  for removal in "${removals[@]}"; do sh -c "$removal" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "bench: generating $EVENTS events" >&2
"$bin" generate "$EVENTS" --sensors 1000 --seed 7 -o "$work/events.jsonl" 2>/dev/null

# Starts a throwaway server (or cluster) with the demo, and prints its URL.
start() {
  local out="$work/demo-$1.out"
  shift
  "$bin" demo --keep "$@" >"$out" 2>/dev/null
  removals+=("$(grep -A1 '^Stop and remove it with:' "$out" | tail -n 1)")
  sed -n "s/^  export DATABASE_URL=//p" "$out" | tr -d "'"
}
echo "bench: starting a single server and a Citus coordinator with two workers" >&2
single=$(start single)
distributed=$(start distributed --distributed)

ms() { # url args...: the median wall time of RUNS runs, in ms
  local url=$1
  shift
  for _ in $(seq "$RUNS"); do
    local t0 t1
    t0=$(date +%s%N)
    "$bin" "$@" --database-url "$url" >/dev/null 2>&1 || true
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
  done | sort -n | sed -n "$(((RUNS + 1) / 2))p"
}

rate() { # url: events/s of one replay, from its JSON summary
  "$bin" replay --format json --jobs "$JOBS" --database-url "$1" "$work/events.jsonl" 2>/dev/null |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["events_per_second"]))'
}

declare -A result
for layout in single distributed; do
  url=${!layout}
  psql -X -q "$url" -c "TRUNCATE metrics, processed_events" >/dev/null
  echo "bench: $layout: replay of $EVENTS new events, then the same again" >&2
  result[$layout,new]=$(rate "$url")
  result[$layout,present]=$(rate "$url")
  psql -X -q "$url" -c "ANALYZE" >/dev/null
  for command in "check" "check --since 1h" "check duplicates" "check ordering --sensor sensor_00042" "lag" "rate"; do
    # shellcheck disable=SC2086
    result[$layout,$command]=$(ms "$url" $command)
  done
done

echo
echo "metricsctl on Citus 13.2.2 (coordinator + 2 workers, 8 shards) beside one server — $(nproc) cores, $(psql -X -At "$single" -c 'SHOW server_version')"
echo "$EVENTS events over 1000 sensors, replay --jobs $JOBS; checks: median of $RUNS whole runs (ms)"
echo
echo "| | single server | distributed | distributed/single |"
echo "| --- | --- | --- | --- |"
for what in new present; do
  s=${result[single,$what]} d=${result[distributed,$what]}
  echo "| replay, $what events (events/s) | $s | $d | $(python3 -c "print(f'{$d/$s:.2f}x')") |"
done
for command in "check" "check --since 1h" "check duplicates" "check ordering --sensor sensor_00042" "lag" "rate"; do
  s=${result[single,$command]} d=${result[distributed,$command]}
  echo "| $command (ms) | $s | $d | $(python3 -c "print(f'{$d/max($s,1):.2f}x')") |"
done
