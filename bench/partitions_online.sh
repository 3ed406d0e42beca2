#!/usr/bin/env bash
# Online partitioning benchmark (issue 10), rerunnable: one throwaway PostgreSQL cluster with
# default durability settings. In the same run:
#   (a) a plain metrics of ROWS rows (default 10M, spread over the past months, guard rows too);
#   (b) a writer — `metricsctl replay` at full speed, batch after batch, as a consumer would —
#       runs alone for BEFORE_S seconds, then through `metricsctl partitions enable`, then AFTER_S
#       seconds more;
#   (c) every writer batch's server time (its bind and execute, lock waits included) comes from
#       the server log (log_min_duration_statement = 0 for the writer's role only): p50/p99/max
#       and batches/s before, during and after the conversion, with the ratio during/before;
#   (d) offline (one transaction) against online conversion of SMALL_ROWS-row tables, no writer.
# Targets (issue 10): no writer batch waits longer than 2 s; throughput during >= 50% of before.
# RATE=N paces the writer to N events/s (a consumer fed by Kafka at that rate) instead of full
# speed: the question is then whether it keeps up during the conversion.
#
# Usage: bench/partitions_online.sh      ROWS=10000000 BEFORE_S=30 AFTER_S=20 BATCH=1000
#        ROWS=1000000 SMALL_ROWS="100000" bench/partitions_online.sh   # a quick run
#        COPY_SHARE=100 bench/partitions_online.sh    # the backfill copying without rests
#        RATE=20000 bench/partitions_online.sh        # a writer paced at 20,000 events/s
set -euo pipefail

ROWS=${ROWS:-10000000}
BEFORE_S=${BEFORE_S:-30}
AFTER_S=${AFTER_S:-20}
BATCH=${BATCH:-1000}
SMALL_ROWS=${SMALL_ROWS-"100000 1000000"} # empty: skip (d)
COPY_SHARE=${COPY_SHARE:-50} # partitions enable --copy-share (its default: 50)
RATE=${RATE:-} # events/s the writer is paced to; empty: full speed
# Each writer run replays this many events (a multiple of BATCH: every batch is a full one).
PER_RUN=$(( BATCH * 300 ))

source "$(dirname "$0")/cluster.sh"

psql_ "$URL/postgres" \
  -c "ALTER SYSTEM SET log_line_prefix = '%n|%p|%v|%u|'" \
  -c "SELECT pg_reload_conf()" \
  -c "CREATE ROLE bench_writer SUPERUSER LOGIN" \
  -c "ALTER ROLE bench_writer SET log_min_duration_statement = 0" \
  -c "ALTER ROLE bench_writer SET log_parameter_max_length = 0" >/dev/null
WRITER_URL="postgresql://bench_writer@${URL#postgresql://postgres@}"

load() { # database rows: a plain metrics with `rows` metrics and their guard rows, 5 s apart
  fresh_database "$1"
  psql_ "$URL/$1" <<SQL
INSERT INTO processed_events (event_id, sensor_id, kafka_partition, kafka_offset, processed_at)
  SELECT 'old-' || i, 'sensor_' || (i % 1000), i % 12, i / 12,
         timestamptz '2025-01-01 00:00:00+00' + make_interval(secs => 5 * i)
  FROM generate_series(1, $2) i;
INSERT INTO metrics (sensor_id, event_id, timestamp, value)
  SELECT 'sensor_' || (i % 1000), 'old-' || i,
         timestamptz '2025-01-01 00:00:00+00' + make_interval(secs => 5 * i), (i % 1000) / 10.0
  FROM generate_series(1, $2) i;
VACUUM ANALYZE;
CHECKPOINT;
SQL
}

seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

echo "bench: (a) loading $ROWS rows into a plain metrics" >&2
t0=$(now)
load bench_live "$ROWS"
echo "bench: loaded in $(seconds_since "$t0") s" >&2

pace() { # passes stdin on at RATE lines/s (all at once when RATE is empty)
  if [ -z "$RATE" ]; then cat; return; fi
  python3 -u -c '
import sys, time
rate = float(sys.argv[1]); started = time.monotonic(); lines = 0
for line in sys.stdin:
    sys.stdout.write(line); lines += 1
    if lines % 100 == 0:
        sys.stdout.flush()
        ahead = lines / rate - (time.monotonic() - started)
        if ahead > 0: time.sleep(ahead)
' "$RATE"
}

writer() { # replays generated events into bench_live until $WORK/stop exists
  local run=0
  while [ ! -e "$WORK/stop" ]; do
    run=$((run + 1))
    "$METRICSCTL" generate "$PER_RUN" --sensors 1000 --seed $((1000 + run)) \
        --start "$(date -u +%Y-%m-01T00:00:00Z)" --interval 1ms -q | pace |
      "$METRICSCTL" replay -q --batch-size "$BATCH" --database-url "$WRITER_URL/bench_live" - \
        >/dev/null 2>>"$WORK/writer.err"
  done
}

echo "bench: (b) the writer alone for $BEFORE_S s" >&2
writer &
writer_pid=$!
sleep 5 # the first run's start-up is not a batch
t_before=$(now)
sleep "$BEFORE_S"
echo "bench: (b) partitions enable while the writer writes" >&2
t_during=$(now)
/usr/bin/time -f "%e %M" -o "$WORK/enable.time" \
  "$METRICSCTL" partitions enable -q --format json --copy-share "$COPY_SHARE" \
  --database-url "$URL/bench_live" \
  >"$WORK/enable.json" 2>"$WORK/enable.err" || { cat "$WORK/enable.err" >&2; exit 1; }
t_after=$(now)
echo "bench: converted in $(seconds_since "$t_during") s; the writer goes on for $AFTER_S s" >&2
sleep "$AFTER_S"
t_end=$(now)
touch "$WORK/stop"
wait "$writer_pid"
[ -s "$WORK/writer.err" ] && { echo "bench: the writer failed:" >&2; cat "$WORK/writer.err" >&2; exit 1; }

# (c) Each writer transaction (pid, virtual transaction id): its statements' durations summed,
# ended at its last line's time; only those that ran the insert path count as batches.
awk -F'|' '$4 == "bench_writer" && $5 ~ /duration: / {
    key = $2 "|" $3
    match($5, /duration: [0-9.]+ ms/); ms = substr($5, RSTART + 10, RLENGTH - 13)
    total[key] += ms; if ($1 > ended[key]) ended[key] = $1
    if ($0 ~ /The idempotent insert path/) batch[key] = 1
  }
  END { for (k in batch) printf "%.3f %.3f\n", ended[k], total[k] }' "$WORK/data/server.log" \
  >"$WORK/batches.txt"

window() { # from to label: batches/s and latency percentiles of the batches that ended in [from, to)
  awk -v from="$1" -v to="$2" '$1 >= from && $1 < to { print $2 }' "$WORK/batches.txt" | sort -g |
    awk -v from="$1" -v to="$2" -v label="$3" -v batch="$BATCH" '
      { v[NR] = $1 }
      END {
        n = NR; s = to - from
        if (n == 0) { printf "  %-28s no batches in %.1f s\n", label, s; exit }
        printf "  %-28s %6d batches in %6.1f s  %8.0f events/s   p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms\n",
          label, n, s, n * batch / s, v[int((n + 1) / 2)], v[int(n * 0.99 + 0.999)], v[n]
      }'
}
rate_in() { awk -v from="$1" -v to="$2" -v batch="$BATCH" '$1 >= from && $1 < to { n++ }
  END { printf "%.0f", n * batch / (to - from) }' "$WORK/batches.txt"; }
max_ms() { awk -v from="$1" -v to="$2" '$1 >= from && $1 < to && $2 > m { m = $2 } END { printf "%.0f", m }' "$WORK/batches.txt"; }

read -r enable_s enable_rss <"$WORK/enable.time"
before_rate=$(rate_in "$t_before" "$t_during")
during_rate=$(rate_in "$t_during" "$t_after")
worst=$(max_ms "$t_during" "$t_after")
rows_after=$(psql_ "$URL/bench_live" -Atc "SELECT count(*) FROM metrics")
guards_after=$(psql_ "$URL/bench_live" -Atc "SELECT count(*) FROM processed_events")
relkind=$(psql_ "$URL/bench_live" -Atc "SELECT relkind FROM pg_class WHERE oid = 'metrics'::regclass")

# (d) offline against online on small tables, no writer.
small=""
for rows in $SMALL_ROWS; do
  load bench_offline "$rows"
  t0=$(now)
  "$METRICSCTL" partitions enable -q --offline --database-url "$URL/bench_offline"
  offline_s=$(seconds_since "$t0")
  load bench_online "$rows"
  t0=$(now)
  "$METRICSCTL" partitions enable -q --database-url "$URL/bench_online"
  online_s=$(seconds_since "$t0")
  small="$small$(printf '  %9s rows: --offline %6.1f s   online %6.1f s   online/offline %5.2fx' \
    "$rows" "$offline_s" "$online_s" "$(awk -v a="$online_s" -v b="$offline_s" 'BEGIN { printf "%.2f", a / (b > 0 ? b : 0.1) }')")\n"
done

cat <<EOF

metricsctl partitions enable (online) benchmark — $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $("$PGBIN/postgres" --version), default durability
(a) plain metrics of $ROWS rows, converted with --copy-share $COPY_SHARE; (b) a replay writer, --batch-size $BATCH, ${RATE:+paced to $RATE events/s, }before, during and after
the conversion; every batch's server time from the log (lock waits included)

  conversion: $enable_s s wall, peak RSS $((enable_rss / 1024)) MiB; afterwards metrics is relkind '$relkind' with $rows_after rows, $guards_after guard rows
  $(tr -d '\n' <"$WORK/enable.json" | tr -s ' ' | cut -c1-400)

writer batches (c):
$(window "$t_before" "$t_during" "before (writer alone)")
$(window "$t_during" "$t_after" "during partitions enable")
$(window "$t_after" "$t_end" "after (partitioned)")

  throughput during / before: $(awk -v a="$during_rate" -v b="$before_rate" 'BEGIN { printf "%.2f", a / b }')x   (target >= 0.50)
  longest batch during:       $worst ms   (target <= 2000)

offline (one transaction, writers blocked throughout) against online, no writer (d):
$(printf '%b' "$small")
EOF
# The figures must add up: every guard row has its metric.
[ "$rows_after" = "$guards_after" ] || { echo "bench: metrics $rows_after rows but $guards_after guard rows" >&2; exit 1; }
[ "$relkind" = p ] || { echo "bench: metrics was not converted" >&2; exit 1; }
exit 0
