#!/usr/bin/env bash
# Where the server's CPU goes when replay is slower than COPY (issue 20): `perf record` on the
# client backends of (b) `metricsctl replay` into empty tables and of (a2) the two `COPY`s at
# once, the same EVENTS generated events, then each profile's samples grouped by kind of work
# (btree searches, kernel, WAL, shared buffers, the rest), side by side, and the symbols where the
# two differ most. Samples are CPU time (perf's -F), so a loaded machine stretches the wall time
# but not the counts. Needs perf (apt-get install -y linux-perf) and root or perf_event_paranoid <= 1.
#
# Usage: bench/replay_profile.sh       EVENTS=1000000
set -euo pipefail

EVENTS=${EVENTS:-1000000}
command -v perf >/dev/null || { echo "bench: needs perf: apt-get install -y linux-perf" >&2; exit 3; }
source "$(dirname "$0")/cluster.sh"

generate_copy_files "$EVENTS" 1000 7

client_backends() { # database: the pids of its client backends, comma-separated, once there are two
  local pids=""
  for _ in $(seq 1 100); do
    pids=$(psql_ "$URL/postgres" -Atc "SELECT string_agg(pid::text, ',') FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND datname = '$1'")
    [[ "$pids" == *,* ]] && break
    sleep 0.05
  done
  echo "$pids"
}

profile_until_done() { # name database pid-of-the-work: perf on the database's backends until the work ends
  local pids perf_pid
  pids=$(client_backends "$2")
  echo "bench: perf on the backends $pids" >&2
  perf record -q -F 499 -o "$WORK/$1.data" -p "$pids" 2>"$WORK/$1.perf.log" &
  perf_pid=$!
  wait "$3"
  sleep 0.5
  # perf ends by itself once every backend it follows has exited; stop it if one is still there.
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" || true
  [ -s "$WORK/$1.data" ] || { cat "$WORK/$1.perf.log" >&2; echo "bench: perf recorded nothing" >&2; exit 3; }
}

echo "bench: (b) replay of $EVENTS events into empty tables, profiled" >&2
fresh_database bench_replay
psql_ "$URL/bench_replay" -c CHECKPOINT
"$METRICSCTL" replay -q --database-url "$URL/bench_replay" "$WORK/files/events.jsonl" &
profile_until_done replay bench_replay $!

echo "bench: (a2) the two COPYs at once, profiled" >&2
fresh_database bench_copy
psql_ "$URL/bench_copy" -c CHECKPOINT
copy_both_at_once bench_copy &
profile_until_done copy bench_copy $!

samples() { # profile: "count symbol", kernel symbols prefixed with [k]
  perf report -i "$WORK/$1.data" --no-children --sort sym -n -q 2>/dev/null |
    awk '{ print $2, ($3 == "[k]" ? "[k]" : "") $NF }'
}
group() { # profile: samples per kind of work, tab-separated
  samples "$1" | awk '
    $2 ~ /^\[k\]/ { g["kernel (file writes and reads: WAL, pages)"] += $1; next }
    $2 ~ /^_bt_|varstr_cmp|bttextcmp|memcmp|FunctionCall2Coll|pg_detoast/ { g["btree search and compare"] += $1; next }
    $2 ~ /XLog|crc32/ { g["WAL record assembly"] += $1; next }
    $2 ~ /hash_search|hash_bytes|LWLock|Buffer/ { g["shared buffers (lookup, locks, dirtying)"] += $1; next }
    { g["the rest (executor, tuples, parsing)"] += $1 }
    END { for (k in g) print k "\t" g[k] }'
}

replay_total=$(samples replay | awk '{ t += $1 } END { print t }')
copy_total=$(samples copy | awk '{ t += $1 } END { print t }')
printf '\nwhere the server CPU goes: replay (b) against the two COPYs (a2), %s events, %s\n' "$EVENTS" "$("$PGBIN/postgres" --version)"
printf 'perf samples at 499 Hz on the client backends (%s samples ≈ 1 CPU second)\n\n' 499
printf '  %-42s %10s %10s %10s\n' "kind of work" replay COPY difference
join -t $'\t' -a1 -a2 -e 0 -o 0,1.2,2.2 <(group replay | sort) <(group copy | sort) |
  awk -F'\t' '{ printf "  %-42s %10d %10d %+10d\n", $1, $2, $3, $2 - $3 }'
printf '  %-42s %10d %10d %+10d   (%.2fx)\n\n' total "$replay_total" "$copy_total" $((replay_total - copy_total)) \
  "$(awk -v a="$replay_total" -v b="$copy_total" 'BEGIN { print a / b }')"
echo "  the symbols where replay spends the most more than COPY (samples: replay, COPY):"
join -1 2 -2 2 -a 1 -e 0 -o 0,1.1,2.1 <(samples replay | sort -k2) <(samples copy | sort -k2) |
  awk '{ printf "%d %s %d %d\n", $2 - $3, $1, $2, $3 }' | sort -rn | head -12 |
  awk '{ printf "    %+6d  %-40s %6d %6d\n", $1, $2, $3, $4 }'
