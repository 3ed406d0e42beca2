#!/usr/bin/env bash
# Replay benchmark (issue 3), rerunnable: one throwaway PostgreSQL cluster with default
# durability settings, the same generated events, and in the same run:
#   (a) plain COPY of the rows into both tables with all their indexes (no idempotency), one
#       connection after the other, and (a2) the same two COPYs at once, one connection per table
#       (replay's default --jobs 2 uses two connections too)
#   (b) metricsctl replay of the JSON Lines file into empty tables
#   (c) the same replay again (every event already present)
#   (d) the seed's naive per-event path (SELECT, INSERT ... RETURNING, INSERT; autocommit) via psql
#   (e) peak RSS of metricsctl replaying a ~1 GB file (BIG_GB=0 skips it)
#   (f) replay into tables without their non-unique indexes (what index maintenance costs)
# It prints events/s of each and the ratios against (a), (a2) and (d), and where the time goes for
# (a), (a2), (b) and (f): metricsctl's CPU (reading, parsing, encoding), the server's CPU (all its
# processes) and the WAL written.
#
# Usage: bench/replay.sh            EVENTS=1000000 SENSORS=1000 NAIVE_EVENTS=20000 BIG_GB=1
#        BATCH_SIZES="1000 5000 20000" bench/replay.sh   # also sweep --batch-size on (b)
#        JOBS_LIST="1 2 4" bench/replay.sh                 # also sweep --jobs on (b) and (c)
# (a) and (b) run REPEAT times (default 3), alternating, each into fresh tables; the medians count,
# because on a small machine one run's throughput swings by 20% or more.
set -euo pipefail

EVENTS=${EVENTS:-1000000}
SENSORS=${SENSORS:-1000}
NAIVE_EVENTS=${NAIVE_EVENTS:-20000}
BIG_GB=${BIG_GB:-1}
BATCH_SIZES=${BATCH_SIZES:-}
REPEAT=${REPEAT:-3}
JOBS_LIST=${JOBS_LIST:-}

source "$(dirname "$0")/cluster.sh"

echo "bench: generating $EVENTS events over $SENSORS sensors" >&2
generate_copy_files "$EVENTS" "$SENSORS" 42

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

replay() { # database, extra args...; prints "seconds max_rss_kb client_cpu_s", the JSON summary goes to $WORK/summary.json
  local db=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/time.txt" \
    "$METRICSCTL" replay -q --format json --database-url "$URL/$db" "$@" > "$WORK/summary.json"
  awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$WORK/time.txt"
}

# CPU seconds the server has used so far: the postmaster, its live children, and (in the
# postmaster's cutime/cstime) every backend that has exited.
server_cpu() {
  local pm ticks
  pm=$(head -1 "$WORK/data/postmaster.pid")
  ticks=$(getconf CLK_TCK)
  { cat "/proc/$pm/stat"; for child in $(pgrep -P "$pm"); do cat "/proc/$child/stat" 2>/dev/null || true; done; } |
    awk -v hz="$ticks" '{ sub(/^.*\) /, ""); t += $12 + $13; if (NR == 1) t += $14 + $15 } END { printf "%.2f", t / hz }'
}
wal_lsn() { psql_ "$URL/postgres" -Atc "SELECT pg_current_wal_lsn()"; }
wal_mb_since() { psql_ "$URL/postgres" -Atc "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$1') / 1048576)"; }
# A backend's CPU reaches the postmaster's cutime only once it has exited and been reaped, a few
# milliseconds after its client hung up; read before that, an exiting backend counts nowhere (a
# 300k run once showed 0.0 s for replay). So settle first.
cpu_since() { sleep 1; awk -v a="$1" -v b="$(server_cpu)" 'BEGIN { printf "%.1f", b - a }'; }

copy_times=""; copy2_times=""; replay_times=""; replay_rss=0
for round in $(seq 1 "$REPEAT"); do
  echo "bench: round $round/$REPEAT: (a) plain COPY into both tables" >&2
  fresh_database bench_copy
  psql_ "$URL/bench_copy" -c CHECKPOINT
  t0=$(now); cpu0=$(server_cpu); lsn0=$(wal_lsn)
  psql_ "$URL/bench_copy" \
    -c "\\copy processed_events (event_id, sensor_id, kafka_partition, kafka_offset) FROM '$WORK/files/processed_events.csv' CSV HEADER" \
    -c "\\copy metrics (event_id, sensor_id, timestamp, value) FROM '$WORK/files/metrics.csv' CSV HEADER"
  copy_times="$copy_times $(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')"
  copy_cpu=$(cpu_since "$cpu0"); copy_wal=$(wal_mb_since "$lsn0")

  echo "bench: round $round/$REPEAT: (a2) the two COPYs at once, one connection per table" >&2
  fresh_database bench_copy2
  psql_ "$URL/bench_copy2" -c CHECKPOINT
  t0=$(now); cpu0=$(server_cpu); lsn0=$(wal_lsn)
  copy_both_at_once bench_copy2
  copy2_times="$copy2_times $(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')"
  copy2_cpu=$(cpu_since "$cpu0"); copy2_wal=$(wal_mb_since "$lsn0")

  echo "bench: round $round/$REPEAT: (b) replay into empty tables" >&2
  fresh_database bench_replay
  psql_ "$URL/bench_replay" -c CHECKPOINT
  cpu0=$(server_cpu); lsn0=$(wal_lsn)
  read -r s rss replay_client_cpu < <(replay bench_replay "$WORK/files/events.jsonl")
  replay_cpu=$(cpu_since "$cpu0"); replay_wal=$(wal_mb_since "$lsn0")
  replay_times="$replay_times $s"
  [ "$rss" -gt "$replay_rss" ] && replay_rss=$rss
done
copy_s=$(echo "$copy_times" | median)
replay_s=$(echo "$replay_times" | median)
inserted=$(grep -o '"inserted": [0-9]*' "$WORK/summary.json" | grep -o '[0-9]*$')
echo "bench: (c) the same replay again" >&2
read -r again_s again_rss _ < <(replay bench_replay "$WORK/files/events.jsonl")
present=$(grep -o '"already_present": [0-9]*' "$WORK/summary.json" | grep -o '[0-9]*$')

echo "bench: (d) naive per-event path on $NAIVE_EVENTS events" >&2
head -n $((NAIVE_EVENTS + 1)) "$WORK/files/events.csv" | tail -n +2 | awk -F, '{
  printf "SELECT event_id FROM processed_events WHERE event_id = '\''%s'\'';\n", $1
  printf "INSERT INTO processed_events (event_id, sensor_id, kafka_partition, kafka_offset) VALUES ('\''%s'\'', '\''%s'\'', %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING event_id;\n", $1, $2, $5, $6
  printf "INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES ('\''%s'\'', '\''%s'\'', '\''%s'\'', %s) ON CONFLICT (event_id) DO NOTHING;\n", $2, $1, $3, $4
}' > "$WORK/files/naive.sql"
t0=$(now)
fresh_database bench_naive
psql_ "$URL/bench_naive" -f "$WORK/files/naive.sql" > /dev/null
naive_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')

copy2_s=$(echo "$copy2_times" | median)
copy_rate=$(rate "$EVENTS" "$copy_s")
copy2_rate=$(rate "$EVENTS" "$copy2_s")
replay_rate=$(rate "$EVENTS" "$replay_s")
again_rate=$(rate "$EVENTS" "$again_s")
naive_rate=$(rate "$NAIVE_EVENTS" "$naive_s")

echo "bench: (f) replay into tables without their non-unique indexes" >&2
fresh_database bench_bare
psql_ "$URL/bench_bare" -c "DROP INDEX idx_processed_events_sensor_id, idx_processed_events_processed_at, idx_metrics_sensor_id, idx_metrics_timestamp, idx_metrics_sensor_timestamp" -c CHECKPOINT
cpu0=$(server_cpu); lsn0=$(wal_lsn)
read -r bare_s _ bare_client_cpu < <(replay bench_bare "$WORK/files/events.jsonl")
bare_cpu=$(cpu_since "$cpu0"); bare_wal=$(wal_mb_since "$lsn0")
bare_rate=$(rate "$EVENTS" "$bare_s")

sweep=""
for size in $BATCH_SIZES; do
  fresh_database bench_sweep
  read -r s rss _ < <(replay bench_sweep --batch-size "$size" "$WORK/files/events.jsonl")
  sweep="$sweep$(printf '  --batch-size %-6s %8s events/s  %5.2fx COPY  peak RSS %s MiB' "$size" "$(rate "$EVENTS" "$s")" "$(ratio "$(rate "$EVENTS" "$s")" "$copy_rate")" $((rss / 1024)))\n"
done

jobs_sweep=""
for jobs in $JOBS_LIST; do
  fresh_database bench_sweep
  read -r s _ _ < <(replay bench_sweep --jobs "$jobs" "$WORK/files/events.jsonl")
  read -r s2 _ _ < <(replay bench_sweep --jobs "$jobs" "$WORK/files/events.jsonl")
  jobs_sweep="$jobs_sweep$(printf '  --jobs %-3s (b) %8s events/s %5.2fx COPY   (c) %8s events/s %5.2fx COPY' "$jobs" "$(rate "$EVENTS" "$s")" "$(ratio "$(rate "$EVENTS" "$s")" "$copy_rate")" "$(rate "$EVENTS" "$s2")" "$(ratio "$(rate "$EVENTS" "$s2")" "$copy_rate")")\n"
done

big=""
if [ "$BIG_GB" != 0 ]; then
  big_events=$(( BIG_GB * 1024 * 1024 * 1024 / 170 ))
  echo "bench: (e) generating ~${BIG_GB} GB ($big_events events) and replaying it" >&2
  "$METRICSCTL" generate "$big_events" --sensors "$SENSORS" --seed 7 --format jsonl -o "$WORK/files/big.jsonl"
  rm -f "$WORK/files/events.csv" "$WORK/files/processed_events.csv" "$WORK/files/metrics.csv"
  big_bytes=$(stat -c %s "$WORK/files/big.jsonl")
  fresh_database bench_big
  read -r big_s big_rss _ < <(replay bench_big "$WORK/files/big.jsonl")
  big=$(printf '(e) replay of %s MiB (%s events): %s events/s, peak RSS %s MiB' \
    $((big_bytes / 1024 / 1024)) "$big_events" "$(rate "$big_events" "$big_s")" $((big_rss / 1024)))
fi

cat <<EOF

metricsctl replay benchmark — $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $("$PGBIN/postgres" --version), default durability
$EVENTS events over $SENSORS sensors, UUID-like event ids, default --batch-size; (a), (b): median of $REPEAT

  (a) plain COPY, both tables      $(printf '%8s' "$copy_rate") events/s   runs: $copy_times s
  (a2) the two COPYs at once       $(printf '%8s' "$copy2_rate") events/s   runs: $copy2_times s
  (b) replay into empty tables     $(printf '%8s' "$replay_rate") events/s   $(ratio "$replay_rate" "$copy_rate")x (a)   inserted $inserted   peak RSS $((replay_rss / 1024)) MiB   runs: $replay_times s
  (c) replay again (all present)   $(printf '%8s' "$again_rate") events/s   $(ratio "$again_rate" "$copy_rate")x (a)   already present $present   peak RSS $((again_rss / 1024)) MiB
  (d) naive per-event path         $(printf '%8s' "$naive_rate") events/s   (b) is $(ratio "$replay_rate" "$naive_rate")x (d)
  (f) replay, no non-unique indexes $(printf '%7s' "$bare_rate") events/s   $(ratio "$bare_rate" "$copy2_rate")x (a2)

  replay (b) against the two connections' COPY (a2): $(ratio "$replay_rate" "$copy2_rate")x

where the time goes (last round; CPU seconds; the machine has $(nproc) cores)
                                   wall s   metricsctl CPU   server CPU   WAL MB
  (a) COPY, one after the other   $(printf '%7.1f' "$copy_s")   $(printf '%14s' -)   $(printf '%10s' "$copy_cpu")   $(printf '%6s' "$copy_wal")
  (a2) COPY, two connections      $(printf '%7.1f' "$copy2_s")   $(printf '%14s' -)   $(printf '%10s' "$copy2_cpu")   $(printf '%6s' "$copy2_wal")
  (b) replay                      $(printf '%7.1f' "$replay_s")   $(printf '%14s' "$replay_client_cpu")   $(printf '%10s' "$replay_cpu")   $(printf '%6s' "$replay_wal")
  (f) replay, no non-unique idx   $(printf '%7.1f' "$bare_s")   $(printf '%14s' "$bare_client_cpu")   $(printf '%10s' "$bare_cpu")   $(printf '%6s' "$bare_wal")
EOF
[ -n "$sweep" ] && printf '\nbatch-size sweep on (b):\n%b' "$sweep"
[ -n "$jobs_sweep" ] && printf '\njobs sweep (single runs):\n%b' "$jobs_sweep"
[ -n "$big" ] && printf '\n%s\n' "$big"
exit 0
