# Shared by the benchmarks: a release build of metricsctl and one throwaway PostgreSQL cluster
# with default durability settings, removed on exit. Source it; it sets METRICSCTL, PGBIN, WORK,
# URL (no database name) and defines psql_, fresh_database, now, median.

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (/usr/bin/time): apt-get install -y time" >&2; exit 3; }
cargo build --release --quiet
METRICSCTL=$PWD/target/release/metricsctl

PGBIN=""
for dir in $(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)") \
           "$(pg_config --bindir 2>/dev/null || true)" \
           $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -Vr); do
  if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then PGBIN=$(dirname "$(readlink -f "$dir/initdb")"); break; fi
done
[ -n "$PGBIN" ] || { echo "bench: PostgreSQL server binaries not found: apt-get install -y postgresql" >&2; exit 3; }

WORK=$(mktemp -d /tmp/metricsctl-bench-XXXXXX)
chmod 755 "$WORK"
as_server() {
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}
cleanup() {
  as_server "'$PGBIN/pg_ctl' stop -D '$WORK/data' -m immediate" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

port=$(( 20000 + RANDOM % 20000 ))
while (: </dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
mkdir "$WORK/data" "$WORK/files"
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/data"
as_server "'$PGBIN/initdb' -D '$WORK/data' -U postgres -A trust -E UTF8 --locale=C >/dev/null"
as_server "'$PGBIN/pg_ctl' start -w -D '$WORK/data' -l '$WORK/data/server.log' \
  -o \"-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$WORK/data'\" >/dev/null"
URL="postgresql://postgres@127.0.0.1:$port"

psql_() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
fresh_database() {
  psql_ "$URL/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" 2>/dev/null
  "$METRICSCTL" migrate -q --database-url "$URL/$1" >/dev/null
}
now() { date +%s.%N; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
