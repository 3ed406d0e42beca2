//! `check ordering`, `check duplicates`, `check all`, `lag` and `rate` against databases built
//! with plain SQL to hold known anomalies; counts are compared with the guide's own queries (kept
//! verbatim in tests/fixtures/seed_queries) or with an oracle computed here.

use std::collections::{BTreeMap, HashMap};

use predicates::str::contains;

use predicates::prelude::PredicateBooleanExt;

use crate::support::{Layout, TestDatabase, json_of, metricsctl, stdout_of, summary_of};

/// One event: its sensor, id, timestamp (seconds after 2026-02-01T00:00:00Z, or before now with
/// `ago`), and where Kafka delivered it.
pub(crate) struct Event {
    sensor: &'static str,
    id: String,
    second: i64,
    partition: Option<i32>,
    offset: Option<i64>,
}

pub(crate) fn event(sensor: &'static str, id: &str, second: i64) -> Event {
    Event {
        sensor,
        id: id.to_string(),
        second,
        partition: None,
        offset: None,
    }
}

pub(crate) fn kafka(
    sensor: &'static str,
    id: &str,
    second: i64,
    partition: i32,
    offset: i64,
) -> Event {
    Event {
        partition: Some(partition),
        offset: Some(offset),
        ..event(sensor, id, second)
    }
}

/// Inserts guard row and metric for each event, in the order given (which is metrics.id order).
pub(crate) fn insert(db: &TestDatabase, events: &[Event]) {
    let mut client = db.client();
    for e in events {
        client
            .execute(
                "INSERT INTO processed_events (event_id, sensor_id, kafka_partition, kafka_offset) \
                 VALUES ($1, $2, $3, $4)",
                &[&e.id, &e.sensor, &e.partition, &e.offset],
            )
            .unwrap();
        client
            .execute(
                "INSERT INTO metrics (sensor_id, event_id, timestamp, value) \
                 VALUES ($1, $2, '2026-02-01T00:00:00Z'::timestamptz + make_interval(secs => $3), 1)",
                &[&e.sensor, &e.id, &(e.second as f64)],
            )
            .unwrap();
    }
}

/// Parses Prometheus text format strictly enough to catch a malformed line: every sample needs
/// a preceding TYPE, names and values must be valid.
pub(crate) fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut typed = std::collections::HashSet::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            typed.insert(parts.next().unwrap().to_string());
            assert_eq!(parts.next(), Some("gauge"), "{line}");
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line}"
        );
        assert!(typed.contains(name), "no TYPE before {line}");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        samples.insert(series.to_string(), value);
    }
    samples
}

pub(crate) fn ordering_fixture(db: &TestDatabase, layout: Layout) {
    db.migrate_as(layout);
    insert(
        db,
        &[
            // sensor-a, no Kafka offsets: delivery order is metrics.id; two events go back in time.
            event("sensor-a", "a1", 10),
            event("sensor-a", "a2", 20),
            event("sensor-a", "a3", 15),
            event("sensor-a", "a4", 30),
            event("sensor-a", "a5", 5),
            // sensor-b: in order.
            event("sensor-b", "b1", 1),
            event("sensor-b", "b2", 2),
            // sensor-c: in order within each of two partitions, which Kafka does not order.
            kafka("sensor-c", "c1", 1, 0, 100),
            kafka("sensor-c", "c2", 2, 1, 7),
            kafka("sensor-c", "c3", 3, 0, 101),
            // sensor-d: inserted out of id order, but the offsets say it was delivered in order.
            kafka("sensor-d", "d2", 20, 4, 2),
            kafka("sensor-d", "d1", 10, 4, 1),
            kafka("sensor-d", "d3", 30, 4, 3),
            // sensor-e: offsets reveal one late event (offset 2 has the oldest timestamp).
            kafka("sensor-e", "e1", 10, 5, 1),
            kafka("sensor-e", "e3", 30, 5, 3),
            kafka("sensor-e", "e2", 5, 5, 2),
        ],
    );
}

/// The oracle: violations per sensor computed here from the raw rows, not by the check's SQL.
fn ordering_oracle(db: &TestDatabase) -> BTreeMap<String, usize> {
    let rows = db
        .client()
        .query(
            "SELECT m.sensor_id, p.kafka_partition, p.kafka_offset, m.id, m.timestamp \
             FROM metrics m LEFT JOIN processed_events p ON p.event_id = m.event_id",
            &[],
        )
        .unwrap();
    /// (sensor, Kafka partition) -> its events as (offset, id, timestamp).
    type Sequence = Vec<(Option<i64>, i64, chrono::DateTime<chrono::Utc>)>;
    let mut sequences: BTreeMap<(String, Option<i32>), Sequence> = BTreeMap::new();
    for row in rows {
        sequences
            .entry((row.get(0), row.get(1)))
            .or_default()
            .push((row.get(2), row.get(3), row.get(4)));
    }
    let mut violations = BTreeMap::new();
    for ((sensor, _), mut sequence) in sequences {
        // Offset order where recorded (missing offsets last, as SQL sorts NULLs), then id.
        sequence.sort_by_key(|(offset, id, _)| (offset.is_none(), *offset, *id));
        let late = sequence.windows(2).filter(|w| w[1].2 < w[0].2).count();
        *violations.entry(sensor).or_insert(0) += late;
    }
    violations
}

fn ordering_finds_exactly_the_late_events_in_delivery_order(layout: Layout) {
    let db = TestDatabase::new();
    ordering_fixture(&db, layout);
    let oracle = ordering_oracle(&db);
    assert_eq!(oracle["sensor-a"], 2);
    assert_eq!(oracle["sensor-d"], 0);
    assert_eq!(oracle["sensor-e"], 1);

    let report = json_of(&db, &["check", "ordering"], 2);
    assert_eq!(report["status"], "CRITICAL");
    assert_eq!(report["sensors_checked"], 5);
    assert_eq!(report["events_checked"], 16);
    assert_eq!(
        report["out_of_order_events"],
        oracle.values().sum::<usize>()
    );
    assert_eq!(report["affected_sensors"], 2);
    assert_eq!(report["multi_partition_sensors"], 1);
    let per_sensor: BTreeMap<String, i64> = report["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["sensor_id"].as_str().unwrap().to_string(),
                s["out_of_order_events"].as_i64().unwrap(),
            )
        })
        .collect();
    for (sensor, count) in &oracle {
        if *count > 0 {
            assert_eq!(per_sensor[sensor], *count as i64, "{sensor}");
        }
    }
    assert!(
        per_sensor.contains_key("sensor-c"),
        "the two-partition sensor is listed"
    );
    // sensor-a's worst: a5 (5 s) after a4 (30 s), 25 s back.
    let worst_a = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["sensor_id"] == "sensor-a")
        .unwrap();
    assert_eq!(worst_a["event_id"], "a5");
    assert_eq!(worst_a["previous_event_id"], "a4");
    assert_eq!(worst_a["regression_seconds"], 25.0);
}

fn ordering_for_one_sensor_lists_its_violations_and_grades_it(layout: Layout) {
    let db = TestDatabase::new();
    ordering_fixture(&db, layout);
    let a = json_of(&db, &["check", "ordering", "--sensor", "sensor-a"], 2);
    let ids: Vec<&str> = a["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["a5", "a3"], "worst first");
    assert_eq!(a["events_checked"], 5);
    assert_eq!(a["violations"][1]["previous_event_id"], "a2");
    assert_eq!(a["violations"][1]["regression_seconds"], 5.0);

    json_of(&db, &["check", "ordering", "--sensor", "sensor-b"], 0);
    json_of(&db, &["check", "ordering", "--sensor", "sensor-d"], 0);
    let c = json_of(&db, &["check", "ordering", "--sensor", "sensor-c"], 1);
    assert_eq!(c["multi_partition_sensors"], 1);
    let e = json_of(&db, &["check", "ordering", "--sensor", "sensor-e"], 2);
    assert_eq!(e["violations"][0]["event_id"], "e2");
    // --limit bounds the samples, not the count.
    let limited = json_of(
        &db,
        &["check", "ordering", "--sensor", "sensor-a", "--limit", "1"],
        2,
    );
    assert_eq!(limited["violations"].as_array().unwrap().len(), 1);
    assert_eq!(limited["out_of_order_events"], 2);
    let sensor_a_since = |since: &str, code: i32| {
        json_of(
            &db,
            &[
                "check", "ordering", "--sensor", "sensor-a", "--since", since,
            ],
            code,
        )
    };
    // --since leaves out the earlier events (a3 at 15 s and a5 at 5 s fall before 16 s).
    sensor_a_since("2026-02-01T00:00:16Z", 0);
    // A violation inside the window is still found: from 10 s on a3 (15 s, after a2's 20 s) is
    // in, a5 (5 s) is not.
    let windowed = sensor_a_since("2026-02-01T00:00:10Z", 2);
    assert_eq!(windowed["events_checked"], 4);
    assert_eq!(windowed["out_of_order_events"], 1);
    assert_eq!(windowed["violations"][0]["event_id"], "a3");
    // An unknown or hostile sensor id is a sensor with no events: nothing was judged, so the
    // check says so and is UNKNOWN, never "in order".
    let nobody = json_of(
        &db,
        &[
            "check",
            "ordering",
            "--sensor",
            "x'; DROP TABLE metrics; --",
        ],
        3,
    );
    assert_eq!(nobody["events_checked"], 0);
    assert!(
        nobody["summary"]
            .as_str()
            .unwrap()
            .contains("has no events"),
        "{nobody}"
    );
    assert!(db.relation_exists("metrics"));
}

fn the_guides_ordering_query_cannot_see_these_violations(layout: Layout) {
    // Why the check orders by delivery: the guide's query sorts by timestamp, so its output is
    // always "in order", even for sensor_123 delivered backwards.
    let db = TestDatabase::new();
    db.migrate_as(layout);
    insert(
        &db,
        &[
            event("sensor_123", "late-1", 30),
            event("sensor_123", "late-2", 10),
        ],
    );
    let seed = include_str!("fixtures/seed_queries/ordering_sensor_123.sql");
    let by_timestamp: Vec<String> = db
        .client()
        .query(seed, &[])
        .unwrap()
        .iter()
        .map(|r| r.get("event_id"))
        .collect();
    // Sorted by timestamp, the late event simply comes first: nothing looks wrong.
    assert_eq!(by_timestamp, vec!["late-2", "late-1"]);
    let report = json_of(&db, &["check", "ordering", "--sensor", "sensor_123"], 2);
    assert_eq!(report["out_of_order_events"], 1, "{report}");
    assert_eq!(report["violations"][0]["event_id"], "late-2", "{report}");
}

fn ordering_in_every_format(layout: Layout) {
    let db = TestDatabase::new();
    ordering_fixture(&db, layout);
    db.metricsctl(&["check", "ordering"])
        .assert()
        .code(2)
        .stdout(contains(
            "CRITICAL: 3 out-of-order events in 2 of 5 sensors",
        ))
        .stdout(contains("sensor-a"));
    let csv_out = db
        .metricsctl(&["check", "ordering", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(csv_out.status.code(), Some(2));
    let mut reader = csv::Reader::from_reader(csv_out.stdout.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        vec![
            "sensor_id",
            "events",
            "kafka_partitions",
            "out_of_order_events",
            "worst_regression_seconds"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][0], "sensor-a");
    assert_eq!(&rows[0][3], "2");
    // Raw values: seconds as a number, not "25 s".
    assert_eq!(&rows[0][4], "25");

    let nagios = db
        .metricsctl(&["check", "ordering", "--format", "nagios"])
        .output()
        .unwrap();
    assert_eq!(nagios.status.code(), Some(2));
    let first = stdout_of(&nagios).lines().next().unwrap().to_string();
    assert!(
        first.starts_with("METRICSCTL ORDERING CRITICAL - 3 out-of-order events"),
        "{first}"
    );
    assert!(first.contains(" | out_of_order_events=3;;0;0"), "{first}");

    let prometheus = db
        .metricsctl(&["check", "ordering", "--format", "prometheus"])
        .output()
        .unwrap();
    assert_eq!(prometheus.status.code(), Some(2));
    let samples = parse_prometheus(&stdout_of(&prometheus));
    assert_eq!(samples["metricsctl_check_status{check=\"ordering\"}"], 2.0);
    assert_eq!(samples["metricsctl_ordering_out_of_order_events"], 3.0);
    assert_eq!(samples["metricsctl_ordering_multi_partition_sensors"], 1.0);
}

fn duplicates_match_the_guides_queries_and_find_orphans_both_ways(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    insert(&db, &[event("s", "ok-1", 1), event("s", "ok-2", 2)]);
    json_of(&db, &["check", "duplicates"], 0);

    let mut client = db.client();
    // Metrics' uniqueness: event_id on the plain layout, (event_id, timestamp) partitioned.
    let unique = match layout {
        Layout::Plain => "metrics_event_id_key",
        Layout::Partitioned => "metrics_event_id_timestamp_key",
    };
    client
        .batch_execute(&format!("ALTER TABLE metrics DROP CONSTRAINT {unique}"))
        .unwrap();
    client
        .batch_execute(
            "ALTER TABLE processed_events DROP CONSTRAINT processed_events_pkey;
             -- ok-1 stored three times, ok-2 twice, and its guard row twice
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
               SELECT sensor_id, event_id, timestamp, value FROM metrics WHERE event_id = 'ok-1';
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
               SELECT sensor_id, event_id, timestamp, value FROM metrics WHERE event_id = 'ok-1'
               LIMIT 1;
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
               SELECT sensor_id, event_id, timestamp, value FROM metrics WHERE event_id = 'ok-2';
             INSERT INTO processed_events (event_id, sensor_id) VALUES ('ok-2', 's');
             -- a guard row whose metric is lost, and a metric that bypassed the guard
             INSERT INTO processed_events (event_id, sensor_id) VALUES ('lost-1', 's');
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
               VALUES ('s', 'sneaky-1', now(), 1);",
        )
        .unwrap();

    let report = json_of(&db, &["check", "duplicates"], 2);
    // The guide's idempotency query, run as the guide wrote it.
    let seed = client
        .query_one(include_str!("fixtures/seed_queries/idempotency.sql"), &[])
        .unwrap();
    assert_eq!(report["guard_rows"], seed.get::<_, i64>("total_rows"));
    assert_eq!(
        report["distinct_guard_ids"],
        seed.get::<_, i64>("unique_event_ids")
    );
    assert_eq!(report["guard_rows"], 4);
    assert_eq!(report["distinct_guard_ids"], 3);
    // The guide's duplicate query: one row per duplicated event id.
    let seed_duplicates = client
        .query(
            include_str!("fixtures/seed_queries/duplicate_metrics.sql"),
            &[],
        )
        .unwrap();
    assert_eq!(report["duplicated_metric_ids"], seed_duplicates.len());
    let surplus: i64 = seed_duplicates
        .iter()
        .map(|r| r.get::<_, i64>("count") - 1)
        .sum();
    assert_eq!(report["surplus_metric_rows"], surplus);
    assert_eq!(report["samples"]["duplicated_metric_ids"][0], "ok-1");
    assert_eq!(report["lost_metrics"], 1);
    assert_eq!(report["samples"]["lost_metrics"][0], "lost-1");
    assert_eq!(report["unguarded_metrics"], 1);
    assert_eq!(report["samples"]["unguarded_metrics"][0], "sneaky-1");
}

fn a_bypassed_guard_alone_is_a_warning(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    insert(&db, &[event("s", "ok-1", 1)]);
    db.client()
        .execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES ('s', 'x', now(), 1)",
            &[],
        )
        .unwrap();
    let report = json_of(&db, &["check", "duplicates"], 1);
    assert_eq!(report["status"], "WARNING");
    db.metricsctl(&["check", "duplicates", "--format", "nagios"])
        .assert()
        .code(1)
        .stdout(contains(
            "METRICSCTL DUPLICATES WARNING - 1 metrics without a processed_events row",
        ));
}

fn check_all_runs_every_check_and_exits_with_the_worst(layout: Layout) {
    let db = TestDatabase::new();
    ordering_fixture(&db, layout);
    let report = json_of(&db, &["check"], 2);
    let checks: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    let mut expected = vec![
        ("ordering", "CRITICAL"),
        ("duplicates", "OK"),
        ("sequence", "OK"),
    ];
    if layout == Layout::Partitioned {
        expected.push(("partitions", "OK"));
    }
    assert_eq!(checks, expected);
    assert_eq!(report["checks"][0]["report"]["out_of_order_events"], 3);
    json_of(&db, &["check", "all"], 2);

    let prometheus = db
        .metricsctl(&["check", "--format", "prometheus"])
        .output()
        .unwrap();
    let samples = parse_prometheus(&stdout_of(&prometheus));
    assert_eq!(samples["metricsctl_check_status{check=\"ordering\"}"], 2.0);
    assert_eq!(
        samples["metricsctl_check_status{check=\"duplicates\"}"],
        0.0
    );
    db.metricsctl(&["check", "--format", "nagios"])
        .assert()
        .code(2)
        .stdout(contains(
            "METRICSCTL CHECKS CRITICAL - ordering CRITICAL, duplicates OK, sequence OK",
        ));

    let clean = TestDatabase::new();
    clean.migrate_as(layout);
    insert(&clean, &[event("s", "only", 1)]);
    json_of(&clean, &["check"], 0);
}

/// Inserts `count` recent events for a sensor, the newest `newest_ago_s` seconds ago, each
/// ingested `latency_s(i)` seconds after it happened.
pub(crate) fn insert_recent(db: &TestDatabase, sensor: &str, count: i64, newest_ago_s: i64) {
    db.client()
        .execute(
            "WITH series AS (SELECT i FROM generate_series(1, $2::bigint) i),
             rows AS (
               SELECT $1::text || '-' || i AS event_id,
                      now() - make_interval(secs => $3::double precision + ($2::bigint - i)) AS ts,
                      i AS latency
               FROM series
             ),
             guard AS (
               INSERT INTO processed_events (event_id, sensor_id) SELECT event_id, $1 FROM rows
             )
             INSERT INTO metrics (sensor_id, event_id, timestamp, value, created_at)
             SELECT $1, event_id, ts, 1, ts + make_interval(secs => latency) FROM rows",
            &[&sensor, &count, &(newest_ago_s as f64)],
        )
        .unwrap();
}

fn lag_on_an_empty_table_is_unknown(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let report = json_of(&db, &["lag"], 3);
    assert_eq!(report["status"], "UNKNOWN");
    assert_eq!(report["summary"], "no metrics yet");
    db.metricsctl(&["lag", "--format", "nagios"])
        .assert()
        .code(3)
        .stdout(contains("METRICSCTL LAG UNKNOWN - no metrics yet"));
}

fn lag_matches_the_guides_query_and_follows_its_thresholds(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    // 100 events, newest 2 s ago, latencies 1..=100 s.
    insert_recent(&db, "live", 100, 2);
    let report = json_of(&db, &["lag"], 0);
    // The guide's query, verbatim, wrapped only to read its numeric lag as a float.
    let seed_sql = include_str!("fixtures/seed_queries/consumer_lag.sql")
        .trim()
        .trim_end_matches(';');
    let seed_lag: f64 = db.scalar(&format!(
        "SELECT CAST(lag_seconds AS double precision) FROM ({seed_sql}\n) AS seed"
    ));
    let lag = report["lag_seconds"].as_f64().unwrap();
    assert!((2.0..10.0).contains(&lag), "{lag}");
    assert!(
        (seed_lag - lag).abs() < 2.0,
        "guide says {seed_lag}, lag says {lag}"
    );
    assert_eq!(report["latency_events"], 100);
    assert_eq!(report["latency_seconds"]["p50"], 50.5);
    assert!((report["latency_seconds"]["p95"].as_f64().unwrap() - 95.05).abs() < 1e-9);
    assert!((report["latency_seconds"]["p99"].as_f64().unwrap() - 99.01).abs() < 1e-9);

    // --latency-sample bounds the work to the window's newest events (latencies 91..=100 s).
    let sampled = json_of(&db, &["lag", "--latency-sample", "10"], 0);
    assert_eq!(sampled["latency_events"], 10);
    assert_eq!(sampled["latency_seconds"]["p50"], 95.5);

    json_of(&db, &["lag", "--warn", "1s", "--crit", "1h"], 1);
    json_of(&db, &["lag", "--warn", "1s", "--crit", "2s"], 2);
    let prometheus = db
        .metricsctl(&["lag", "--format", "prometheus"])
        .output()
        .unwrap();
    let samples = parse_prometheus(&stdout_of(&prometheus));
    assert_eq!(samples["metricsctl_check_status{check=\"lag\"}"], 0.0);
    assert!(samples["metricsctl_lag_seconds"] >= 2.0);
    assert_eq!(
        samples["metricsctl_latency_seconds{percentile=\"50\"}"],
        50.5
    );
    let nagios = db
        .metricsctl(&["lag", "--format", "nagios"])
        .output()
        .unwrap();
    let first = stdout_of(&nagios).lines().next().unwrap().to_string();
    assert!(first.starts_with("METRICSCTL LAG OK - "), "{first}");
    assert!(first.contains(" | lag="), "{first}");
    // Nagios ranges: lag above 60 s warns, above 300 s is critical; seconds have no minimum.
    assert!(first.contains("s;60;300 "), "{first}");
}

fn a_silent_sensor_is_listed_and_warns(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    insert_recent(&db, "chatty", 10, 1);
    insert_recent(&db, "quiet", 10, 1200);
    // Guard rows only: its metrics were retired; it is not a sensor any more.
    db.client()
        .batch_execute(
            "INSERT INTO processed_events (event_id, sensor_id) VALUES ('gone-1', 'gone')",
        )
        .unwrap();
    let report = json_of(&db, &["lag", "--stale", "15m"], 1);
    assert_eq!(report["sensors"], 2);
    assert_eq!(report["stale_sensors"], 1);
    assert_eq!(report["stale"][0]["sensor_id"], "quiet");
    let silent = report["stale"][0]["silent_seconds"].as_f64().unwrap();
    assert!((1200.0..1260.0).contains(&silent), "{silent}");
    json_of(&db, &["lag", "--stale", "1h"], 0);
}

/// Silent sensors whose newest metric is months or years back, on 36+ monthly partitions: `lag`
/// looks in the newest partitions first, and must still find each sensor's newest metric wherever
/// it is — compared here with max(timestamp) read directly.
fn silent_sensors_are_found_however_many_months_back(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    if layout == Layout::Partitioned {
        let from: String = db.scalar("SELECT to_char(now() - interval '36 months', 'YYYY-MM')");
        db.metricsctl(&["partitions", "create", "--from", &from, "--months", "2"])
            .assert()
            .code(0);
        let partitions =
            db.count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'metrics'::regclass");
        assert!(partitions >= 38, "{partitions} partitions");
    }
    insert_recent(&db, "live", 5, 2);
    insert_recent(&db, "months", 5, 150 * 86_400);
    insert_recent(&db, "years", 5, 800 * 86_400);
    let report = json_of(&db, &["lag", "--stale", "15m"], 1);
    assert_eq!(report["sensors"], 3);
    assert_eq!(report["stale_sensors"], 2);
    let listed: Vec<&str> = report["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["sensor_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec!["years", "months"], "longest silent first");
    for entry in report["stale"].as_array().unwrap() {
        let sensor = entry["sensor_id"].as_str().unwrap();
        let silent: f64 = db
            .client()
            .query_one(
                "SELECT CAST(EXTRACT(EPOCH FROM now() - max(timestamp)) AS double precision) \
                 FROM metrics WHERE sensor_id = $1",
                &[&sensor],
            )
            .unwrap()
            .get(0);
        let reported = entry["silent_seconds"].as_f64().unwrap();
        assert!(
            (reported - silent).abs() < 60.0,
            "{sensor}: {reported} against {silent}"
        );
    }
    let lag = report["lag_seconds"].as_f64().unwrap();
    assert!(
        (0.0..60.0).contains(&lag),
        "the newest metric is seconds old: {lag}"
    );
}

/// A sequence behind max(id) (a data-only restore) is CRITICAL with the figures read here
/// directly, and OK again once `repair` has moved it on.
fn a_sequence_behind_the_stored_ids_is_critical_until_repaired(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    insert_recent(&db, "s", 10, 1);
    json_of(&db, &["check", "sequence"], 0);
    db.client()
        .batch_execute("SELECT setval('metrics_id_seq', 5)")
        .unwrap();
    let max_id = db.count("SELECT max(id) FROM metrics");
    let report = json_of(&db, &["check", "sequence"], 2);
    assert_eq!(report["status"], "CRITICAL");
    let summary = report["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "would hand out id 6 but metrics holds ids up to {max_id}"
        )),
        "{summary}"
    );
    json_of(&db, &["check"], 2);
    db.metricsctl(&["repair"]).assert().code(0);
    json_of(&db, &["check", "sequence"], 0);
    let next: i64 = db.scalar("SELECT nextval('metrics_id_seq')");
    assert!(next > max_id, "{next} after {max_id}");
}

fn rate_shows_every_minute_and_matches_the_guides_query(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    seven_events_ingested_three_and_one_minutes_ago(&db);
    rate_counts_each_minute_as_the_guides_query_does(&db);
    rate_thresholds_hours_and_formats_agree(&db);
}

/// Five events ingested in the minute that began three minutes ago and two in the last complete
/// minute: guard rows and metrics at one instant each, as in one transaction.
fn seven_events_ingested_three_and_one_minutes_ago(db: &TestDatabase) {
    // The buckets are relative to the current minute: do not start right before it turns.
    let second: f64 = db.scalar("SELECT CAST(EXTRACT(SECOND FROM now()) AS double precision)");
    if second > 45.0 {
        std::thread::sleep(std::time::Duration::from_secs_f64(61.0 - second));
    }
    db.client()
        .batch_execute(
            // Each event's guard row and metric, ingested at one instant as in one transaction.
            "CREATE TEMP TABLE ingested AS
             SELECT 'r3-' || i AS event_id,
                    date_trunc('minute', now()) - interval '3 minutes' + interval '1 second' AS at
             FROM generate_series(1, 5) i
             UNION ALL
             SELECT 'r1-' || i, date_trunc('minute', now()) - interval '1 minute' + interval '2 seconds'
             FROM generate_series(1, 2) i;
             INSERT INTO processed_events (event_id, sensor_id, processed_at)
             SELECT event_id, 's', at FROM ingested;
             INSERT INTO metrics (sensor_id, event_id, timestamp, value, created_at)
             SELECT 's', event_id, now(), 1, at FROM ingested;",
        )
        .unwrap();
}

/// `rate --minutes 5` shows every minute, the empty ones as zeros, and the guide's query finds
/// the same counts in the minutes that are not empty.
fn rate_counts_each_minute_as_the_guides_query_does(db: &TestDatabase) {
    let report = json_of(db, &["rate", "--minutes", "5"], 0);
    let buckets: Vec<i64> = report["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["events"].as_i64().unwrap())
        .collect();
    assert_eq!(
        buckets,
        vec![0, 5, 0, 2, 0],
        "empty minutes are zeros, not gaps"
    );
    assert_eq!(report["total_events"], 7);
    assert_eq!(report["last_complete_bucket_events"], 2);

    // The guide's query lists only the non-empty minutes, newest first: the same counts.
    let seed: Vec<i64> = db
        .client()
        .query(
            include_str!("fixtures/seed_queries/ingestion_rate.sql"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get("events_processed"))
        .collect();
    assert_eq!(seed, vec![2, 5]);
}

/// Over the seven events: the thresholds warn and go critical below 3 in the last complete
/// minute, hours group them, and the table and Prometheus formats say the same.
fn rate_thresholds_hours_and_formats_agree(db: &TestDatabase) {
    json_of(db, &["rate", "--minutes", "5", "--warn-below", "3"], 1);
    json_of(
        db,
        &[
            "rate",
            "--minutes",
            "5",
            "--warn-below",
            "3",
            "--crit-below",
            "3",
        ],
        2,
    );
    let hourly = json_of(db, &["rate", "--minutes", "120", "--by", "hour"], 0);
    assert_eq!(hourly["buckets"].as_array().unwrap().len(), 2);
    assert_eq!(hourly["total_events"], 7);
    db.metricsctl(&["rate", "--minutes", "5"])
        .assert()
        .code(0)
        .stdout(contains("█"));
    let prometheus = db
        .metricsctl(&["rate", "--minutes", "5", "--format", "prometheus"])
        .output()
        .unwrap();
    let samples = parse_prometheus(&stdout_of(&prometheus));
    assert_eq!(samples["metricsctl_rate_events"], 7.0);
    assert_eq!(samples["metricsctl_rate_last_complete_bucket_events"], 2.0);
}

#[test]
fn checks_need_the_schema_and_say_so_in_monitoring_formats() {
    let db = TestDatabase::new();
    for command in [&["check"][..], &["check", "ordering"], &["lag"], &["rate"]] {
        db.metricsctl(command)
            .args(["--format", "nagios"])
            .assert()
            .code(3)
            .stdout(contains("UNKNOWN - the table"))
            .stderr(contains("metricsctl migrate"));
    }
    let prometheus = db
        .metricsctl(&["lag", "--format", "prometheus"])
        .output()
        .unwrap();
    assert_eq!(prometheus.status.code(), Some(3));
    let samples = parse_prometheus(&stdout_of(&prometheus));
    assert_eq!(samples["metricsctl_check_status{check=\"lag\"}"], 3.0);
    metricsctl()
        .args([
            "lag",
            "--format",
            "json",
            "--database-url",
            "postgresql://x@127.0.0.1:1/x",
        ])
        .assert()
        .code(3)
        .stdout(contains("\"status\": \"UNKNOWN\""));
}

fn future_dated_events_are_a_sensor_clock_ahead_not_a_negative_lag(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    insert_recent(&db, "live", 10, 30);
    db.client()
        .batch_execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES
             ('ahead', 'ahead-1', now() + interval '1 minute 30 seconds', 1),
             ('ahead', 'ahead-2', now() + interval '2 minutes', 1)",
        )
        .unwrap();
    // The guide's query reads the future event as a negative lag.
    let seed_sql = include_str!("fixtures/seed_queries/consumer_lag.sql")
        .trim()
        .trim_end_matches(';');
    let seed_lag: f64 = db.scalar(&format!(
        "SELECT CAST(lag_seconds AS double precision) FROM ({seed_sql}\n) AS seed"
    ));
    assert!(seed_lag < -100.0, "{seed_lag}");

    let report = json_of(&db, &["lag"], 1);
    assert_eq!(report["clock_ahead_sensors"], 1);
    assert_eq!(report["clock_ahead"][0]["sensor_id"], "ahead");
    let ahead = report["clock_ahead_seconds"].as_f64().unwrap();
    assert!((110.0..121.0).contains(&ahead), "{ahead}");
    // The lag of the others, as usual: the live sensor's newest event is 30 s old.
    let lag = report["lag_seconds"].as_f64().unwrap();
    assert!((30.0..40.0).contains(&lag), "{lag}");
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.contains("sensor clock ahead"), "{summary}");
    assert!(summary.contains("ahead"), "{summary}");
    let nagios = db
        .metricsctl(&["lag", "--format", "nagios"])
        .output()
        .unwrap();
    let first = stdout_of(&nagios).lines().next().unwrap().to_string();
    assert!(first.starts_with("METRICSCTL LAG WARNING - 3"), "{first}");
    assert!(!first.contains("lag=-"), "{first}");
    assert!(first.contains("clock_ahead_sensors=1;0;;0"), "{first}");

    // Within --clock-tolerance the future counts as now: lag 0, OK.
    let tolerant = json_of(&db, &["lag", "--clock-tolerance", "5m"], 0);
    assert_eq!(tolerant["clock_ahead_sensors"], 0);
    assert_eq!(tolerant["lag_seconds"], 0.0);

    // Only future-dated events: no lag to speak of, and the sensors named.
    let only_future = TestDatabase::new();
    only_future.migrate_as(layout);
    only_future
        .client()
        .batch_execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value)
             VALUES ('ahead', 'a', now() + interval '1 day', 1)",
        )
        .unwrap();
    let report = json_of(&only_future, &["lag"], 1);
    assert_eq!(report["lag_seconds"], serde_json::Value::Null);
    assert_eq!(report["clock_ahead"][0]["sensor_id"], "ahead");
}

fn rate_thresholds_that_cannot_be_judged_are_unknown(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    insert_recent(&db, "live", 5, 1);
    // One minute is only the current one, still filling: no complete bucket.
    let report = json_of(&db, &["rate", "--minutes", "1", "--warn-below", "10"], 3);
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("cannot be judged"),
        "{report}"
    );
    json_of(
        &db,
        &[
            "rate",
            "--minutes",
            "60",
            "--by",
            "hour",
            "--crit-below",
            "1",
        ],
        3,
    );
    // Without thresholds there is nothing to judge: OK.
    json_of(&db, &["rate", "--minutes", "1"], 0);
}

fn a_deliberate_backfill_can_be_told_from_a_consumer_fault(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let add = |id: &str, second: i64, ingested_hours_ago: i64| {
        db.client()
            .execute(
                "INSERT INTO metrics (sensor_id, event_id, timestamp, value, created_at)
                 VALUES ('s', $1, '2026-02-01T00:00:00Z'::timestamptz + make_interval(secs => $2),
                         1, now() - make_interval(hours => $3))",
                &[&id, &(second as f64), &(ingested_hours_ago as i32)],
            )
            .unwrap();
    };
    // Live data, three hours ago, from a consumer that records no Kafka coordinates.
    for second in 10..20 {
        add(&format!("live-{second}"), second, 3);
    }
    // An hour ago: the operator replays older events (a backfill).
    for second in 1..5 {
        add(&format!("backfill-{second}"), second, 1);
    }
    let report = json_of(&db, &["check", "ordering"], 2);
    assert_eq!(report["out_of_order_events"], 1);
    assert_eq!(report["out_of_order_without_kafka"], 1);
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.contains("no Kafka coordinates"), "{summary}");
    assert!(summary.contains("--ingested-since"), "{summary}");
    // Judging only what was ingested since the backfill began: in order.
    json_of(&db, &["check", "ordering", "--ingested-since", "2h"], 0);
    json_of(
        &db,
        &[
            "check",
            "ordering",
            "--sensor",
            "s",
            "--ingested-since",
            "2h",
        ],
        0,
    );
    // ... and a consumer fault after it is still caught.
    add("fault-30", 30, 0);
    add("fault-25", 25, 0);
    let fault = json_of(&db, &["check", "ordering", "--ingested-since", "2h"], 2);
    assert_eq!(fault["out_of_order_events"], 1);
    assert_eq!(fault["violations"][0]["event_id"], "fault-25");
}

fn limit_applies_and_says_how_many_were_left_out(layout: Layout) {
    let db = TestDatabase::new();
    ordering_fixture(&db, layout);
    let limited = json_of(&db, &["check", "ordering", "--limit", "1"], 2);
    assert_eq!(limited["sensors"].as_array().unwrap().len(), 1);
    assert_eq!(limited["flagged_sensors"], 3);
    db.metricsctl(&["check", "ordering", "--limit", "1"])
        .assert()
        .code(2)
        .stdout(contains("… and 2 more not shown"));
    db.metricsctl(&["check", "ordering", "--limit", "1", "--format", "nagios"])
        .assert()
        .code(2)
        .stdout(contains("… and 2 more not shown"));
    // Every event is unguarded here but the fixture's: samples bounded, the rest counted.
    db.client()
        .batch_execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value)
             SELECT 'x', 'unguarded-' || i, now(), 1 FROM generate_series(1, 5) i",
        )
        .unwrap();
    db.metricsctl(&["check", "duplicates", "--limit", "2"])
        .assert()
        .code(1)
        .stdout(contains("(and 3 more; raise --limit)"));
    insert_recent(&db, "quiet-1", 1, 3600);
    insert_recent(&db, "quiet-2", 1, 3600);
    db.metricsctl(&["lag", "--limit", "1", "--warn", "1y", "--crit", "2y"])
        .assert()
        .stdout(contains("… and"));
    // The largest --limit is "all of them", not a wrapped negative LIMIT.
    let all = json_of(&db, &["check", "ordering", "--limit", "4294967295"], 2);
    assert_eq!(all["sensors"].as_array().unwrap().len(), 3);
    json_of(&db, &["check", "duplicates", "--limit", "4294967295"], 1);
}

/// `check duplicates --since` and `check --since` read a window: what is older is not judged,
/// what is newer is judged as the whole check would judge it.
fn a_window_judges_only_what_is_recent_as_the_whole_check_would(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let unique = match layout {
        Layout::Plain => "metrics_event_id_key",
        Layout::Partitioned => "metrics_event_id_timestamp_key",
    };
    db.client()
        .batch_execute(&format!(
            "ALTER TABLE metrics DROP CONSTRAINT {unique};
             -- Old incidents, two days back: a lost metric, an unguarded metric, a duplicate.
             INSERT INTO processed_events (event_id, sensor_id, processed_at)
               VALUES ('old-lost', 's', now() - interval '2 days'),
                      ('old-twice', 's', now() - interval '2 days');
             INSERT INTO metrics (sensor_id, event_id, timestamp, value, created_at)
               VALUES ('s', 'old-sneaky', now() - interval '2 days', 1, now() - interval '2 days'),
                      ('s', 'old-twice', now() - interval '2 days', 1, now() - interval '2 days'),
                      ('s', 'old-twice', now() - interval '2 days' + interval '1 second', 1,
                       now() - interval '2 days');
             -- Recent, sound: an event ingested now whose reading is a year old (a backfill:
             -- its metric is in an old month) and a live one.
             INSERT INTO processed_events (event_id, sensor_id)
               VALUES ('backfilled', 's'), ('live', 's');
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
               VALUES ('s', 'backfilled', now() - interval '1 year', 1),
                      ('s', 'live', now() - interval '1 minute', 1);"
        ))
        .unwrap();
    let whole = json_of(&db, &["check", "duplicates"], 2);
    assert_eq!(whole["lost_metrics"], 1);
    assert_eq!(whole["unguarded_metrics"], 1);
    assert_eq!(whole["duplicated_metric_ids"], 1);
    let window = json_of(&db, &["check", "duplicates", "--since", "1h"], 0);
    assert_eq!(window["guard_rows"], 2, "{window}");
    assert_eq!(
        window["lost_metrics"], 0,
        "the backfilled event is not lost"
    );
    assert!(
        window["summary"].as_str().unwrap().contains("(since "),
        "{window}"
    );

    // Recent incidents of each kind are found in the window.
    db.client()
        .batch_execute(
            "INSERT INTO processed_events (event_id, sensor_id) VALUES ('new-lost', 's'), ('new-twice', 's');
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
               VALUES ('s', 'new-sneaky', now(), 1),
                      ('s', 'new-twice', now() - interval '2 minutes', 1),
                      ('s', 'new-twice', now() - interval '3 minutes', 1);",
        )
        .unwrap();
    let window = json_of(&db, &["check", "duplicates", "--since", "1h"], 2);
    assert_eq!(window["lost_metrics"], 1);
    assert_eq!(window["samples"]["lost_metrics"][0], "new-lost");
    assert_eq!(window["unguarded_metrics"], 1);
    assert_eq!(window["samples"]["unguarded_metrics"][0], "new-sneaky");
    assert_eq!(window["duplicated_metric_ids"], 1);
    assert_eq!(window["samples"]["duplicated_metric_ids"][0], "new-twice");
    let whole = json_of(&db, &["check", "duplicates"], 2);
    assert_eq!(whole["lost_metrics"], 2);
    assert_eq!(whole["duplicated_metric_ids"], 2);

    // check --since: the window for ordering and duplicates alike.
    let all = json_of(&db, &["check", "--since", "1h"], 2);
    let duplicates = check_in(&all, "duplicates");
    assert_eq!(duplicates["report"]["lost_metrics"], 1, "{all}");
    assert_eq!(duplicates["report"]["duplicated_metric_ids"], 1, "{all}");
}

/// One check's entry in `check --format json`.
fn check_in<'a>(all: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    all["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} in {all}"))
}

/// `check --since`: an old ordering violation is not judged in a window that starts after it.
fn check_all_since_leaves_old_violations_out(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    insert(&db, &[event("s", "a", 100), event("s", "b", 50)]);
    let whole = db
        .metricsctl(&["check", "--format", "json"])
        .output()
        .unwrap();
    let whole = summary_of(&whole);
    assert_eq!(check_in(&whole, "ordering")["status"], "CRITICAL");
    let window = db
        .metricsctl(&["check", "--since", "1h", "--format", "json"])
        .output()
        .unwrap();
    let window = summary_of(&window);
    assert_eq!(check_in(&window, "ordering")["status"], "OK", "{window}");
    assert_eq!(check_in(&window, "duplicates")["status"], "OK", "{window}");
}

crate::on_both_layouts!(
    the_guides_ordering_query_cannot_see_these_violations,
    ordering_in_every_format,
    a_bypassed_guard_alone_is_a_warning,
    lag_on_an_empty_table_is_unknown,
    silent_sensors_are_found_however_many_months_back,
    future_dated_events_are_a_sensor_clock_ahead_not_a_negative_lag,
    rate_thresholds_that_cannot_be_judged_are_unknown,
    a_deliberate_backfill_can_be_told_from_a_consumer_fault,
    limit_applies_and_says_how_many_were_left_out,
    a_window_judges_only_what_is_recent_as_the_whole_check_would,
);

// Again on the distributed layout (Citus): the replay, check and repair paths that differ there.
crate::on_every_layout!(
    check_all_runs_every_check_and_exits_with_the_worst,
    check_all_since_leaves_old_violations_out,
    duplicates_match_the_guides_queries_and_find_orphans_both_ways,
    lag_matches_the_guides_query_and_follows_its_thresholds,
    a_silent_sensor_is_listed_and_warns,
    ordering_finds_exactly_the_late_events_in_delivery_order,
    ordering_for_one_sensor_lists_its_violations_and_grades_it,
    rate_shows_every_minute_and_matches_the_guides_query,
    a_sequence_behind_the_stored_ids_is_critical_until_repaired,
);

#[test]
fn a_check_whose_sql_the_database_refuses_is_unknown_not_critical() {
    let db = TestDatabase::new();
    // Tables with the right names and other columns.
    db.client()
        .batch_execute(
            "CREATE TABLE processed_events (id int, note text);
             CREATE TABLE metrics (id int, reading text)",
        )
        .unwrap();
    for command in [
        &["check"][..],
        &["check", "ordering"],
        &["check", "ordering", "--sensor", "s"],
        &["check", "duplicates"],
        &["lag"],
        &["rate"],
    ] {
        db.metricsctl(command)
            .args(["--format", "nagios"])
            .assert()
            .code(3)
            .stdout(contains("UNKNOWN - "))
            .stderr(contains("column"));
    }
}

#[test]
fn inverted_thresholds_are_refused() {
    let db = TestDatabase::new();
    db.migrate();
    db.metricsctl(&["lag", "--warn", "5m", "--crit", "1m"])
        .assert()
        .code(3)
        .stdout("")
        .stderr(contains("--warn 5m is above --crit 1m"));
    db.metricsctl(&["rate", "--warn-below", "5", "--crit-below", "10"])
        .assert()
        .code(3)
        .stderr(contains("--crit-below 10 is above --warn-below 5"));
    // Equal thresholds are fine: CRITICAL wins.
    db.metricsctl(&["lag", "--warn", "1m", "--crit", "1m"])
        .assert()
        .code(3)
        .stdout(contains("no metrics yet"));
}

#[test]
fn limit_is_offered_only_where_it_applies() {
    for command in [
        &["check", "--help"][..],
        &["check", "all", "--help"],
        &["check", "ordering", "--help"],
        &["check", "duplicates", "--help"],
        &["lag", "--help"],
    ] {
        metricsctl()
            .args(command)
            .assert()
            .code(0)
            .stdout(contains("--limit"));
    }
    for command in [
        &["rate", "--help"][..],
        &["check", "partitions", "--help"],
        &["migrate", "status", "--help"],
    ] {
        metricsctl()
            .args(command)
            .assert()
            .code(0)
            .stdout(contains("--limit").not());
    }
}
