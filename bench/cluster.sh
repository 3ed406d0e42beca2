# Shared by the benchmarks: a release build of metricsctl and one throwaway PostgreSQL cluster
# with default durability settings, removed on exit. Source it; it sets METRICSCTL, PGBIN, WORK,
# URL (no database name) and defines psql_, fresh_database, load_metrics, now, median,
# generate_copy_files, copy_both_at_once.
# SERVER_SETTINGS="shared_buffers=4GB ..." starts the cluster with those settings instead of the
# defaults (to tell what memory changes from what the code does).

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

server_options=""
for setting in ${SERVER_SETTINGS:-}; do server_options="$server_options -c $setting"; done

port=$(( 20000 + RANDOM % 20000 ))
while (: </dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
mkdir "$WORK/data" "$WORK/files"
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/data"
as_server "'$PGBIN/initdb' -D '$WORK/data' -U postgres -A trust -E UTF8 --locale=C >/dev/null"
as_server "'$PGBIN/pg_ctl' start -w -D '$WORK/data' -l '$WORK/data/server.log' \
  -o \"-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$WORK/data'$server_options\" >/dev/null"
URL="postgresql://postgres@127.0.0.1:$port"

psql_() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
fresh_database() {
  psql_ "$URL/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" 2>/dev/null
  "$METRICSCTL" migrate -q --database-url "$URL/$1" >/dev/null
}
now() { date +%s.%N; }

# generate_copy_files EVENTS SENSORS SEED: the same generated events as events.jsonl (for replay)
# and as the CSV files of (a2)'s two COPYs, processed_events.csv and metrics.csv, in $WORK/files.
generate_copy_files() {
  "$METRICSCTL" generate "$1" --sensors "$2" --seed "$3" --format jsonl -o "$WORK/files/events.jsonl"
  "$METRICSCTL" generate "$1" --sensors "$2" --seed "$3" --format csv -o "$WORK/files/events.csv"
  cut -d, -f1,2,5,6 "$WORK/files/events.csv" >"$WORK/files/processed_events.csv"
  cut -d, -f1,2,3,4 "$WORK/files/events.csv" >"$WORK/files/metrics.csv"
}

# copy_both_at_once DB: (a2), the two COPYs at once, one connection per table, both awaited.
copy_both_at_once() {
  psql_ "$URL/$1" \
    -c "\\copy processed_events (event_id, sensor_id, kafka_partition, kafka_offset) FROM '$WORK/files/processed_events.csv' CSV HEADER" &
  psql_ "$URL/$1" \
    -c "\\copy metrics (event_id, sensor_id, timestamp, value) FROM '$WORK/files/metrics.csv' CSV HEADER"
  wait
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# load_metrics DB ROWS SENSORS AGE: a fresh database of ROWS metrics and their guard rows, event g
# of sensor g % SENSORS dated AGE (an SQL interval expression in g and $ROWS) before now; one
# event in 5,000 arrives 90 s late; latency 0.5 to 3.5 s; Kafka partition sensor % 12. Loaded
# without the indexes, then exactly the migration's keys and indexes are built (same names): much
# faster than maintaining them row by row; `migrate status` proves the schema is the migrated one.
load_metrics() {
  local db=$1 rows=$2 sensors=$3 age=${4//\$ROWS/$2}
  fresh_database "$db"
  psql_ "$URL/$db" <<SQL
SET maintenance_work_mem = '1GB';
ALTER TABLE processed_events DROP CONSTRAINT processed_events_pkey;
DROP INDEX idx_processed_events_sensor_id, idx_processed_events_processed_at;
ALTER TABLE metrics DROP CONSTRAINT metrics_pkey, DROP CONSTRAINT metrics_event_id_key;
DROP INDEX idx_metrics_sensor_id, idx_metrics_timestamp, idx_metrics_sensor_timestamp;

CREATE TEMP TABLE generated AS
SELECT md5(g::text)::uuid::text AS event_id,
       'sensor_' || lpad((g % $sensors)::text, 5, '0') AS sensor_id,
       (g % $sensors) % 12 AS kafka_partition,
       g AS kafka_offset,
       now() - ($age)
             - CASE WHEN g % 5000 = 0 THEN interval '90 seconds' ELSE interval '0' END AS ts,
       (g % 997) / 10.0 AS value,
       0.5 + (g % 31) / 10.0 AS latency
FROM generate_series(1, $rows) g;

-- The guard row and its metric share one ingestion time, as in one transaction.
INSERT INTO processed_events (event_id, sensor_id, kafka_partition, kafka_offset, processed_at)
SELECT event_id, sensor_id, kafka_partition, kafka_offset, ts + make_interval(secs => latency)
FROM generated;
INSERT INTO metrics (sensor_id, event_id, timestamp, value, created_at)
SELECT sensor_id, event_id, ts, value, ts + make_interval(secs => latency)
FROM generated ORDER BY kafka_offset;
DROP TABLE generated;

ALTER TABLE processed_events ADD CONSTRAINT processed_events_pkey PRIMARY KEY (event_id);
CREATE INDEX idx_processed_events_sensor_id ON processed_events(sensor_id);
CREATE INDEX idx_processed_events_processed_at ON processed_events(processed_at);
ALTER TABLE metrics ADD CONSTRAINT metrics_pkey PRIMARY KEY (id);
ALTER TABLE metrics ADD CONSTRAINT metrics_event_id_key UNIQUE (event_id);
CREATE INDEX idx_metrics_sensor_id ON metrics(sensor_id);
CREATE INDEX idx_metrics_timestamp ON metrics(timestamp);
CREATE INDEX idx_metrics_sensor_timestamp ON metrics(sensor_id, timestamp DESC);
VACUUM ANALYZE processed_events;
VACUUM ANALYZE metrics;
CHECKPOINT;
SQL
  "$METRICSCTL" migrate status -q --database-url "$URL/$db" >/dev/null \
    || { echo "bench: the loaded schema is not the migrated one" >&2; exit 2; }
}
