//! `metricsctl repair` and `replay --repair` (issue 11): every anomaly `check` finds, planted with
//! plain SQL on both layouts, is repaired exactly, idempotently, beside a running replay, and the
//! guide's own queries agree afterwards.

use serde_json::Value;

use crate::support::{
    Layout, TestDatabase, assert_exactly_once, event_line, generate_events, spawn_replay,
    stderr_of, summary_of, write_lines,
};

fn repair(db: &TestDatabase, args: &[&str], code: i32) -> Value {
    let output = db
        .metricsctl(&["repair", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(code), "{}", stderr_of(&output));
    summary_of(&output)
}

fn step<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["repairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {report}"))
}

/// Everything the repairs may touch, as text: both tables (with ctid-free columns), the
/// constraints of the guide and the sequence's position.
fn snapshot(db: &TestDatabase) -> String {
    let mut client = db.client();
    let mut out = String::new();
    for sql in [
        "SELECT string_agg(format('%s|%s|%s|%s|%s', event_id, sensor_id, processed_at, kafka_partition, kafka_offset), ',' ORDER BY event_id, processed_at) FROM processed_events",
        "SELECT string_agg(format('%s|%s|%s|%s|%s', id, event_id, sensor_id, timestamp, value), ',' ORDER BY id, timestamp) FROM metrics",
        "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid IN ('metrics'::regclass, 'processed_events'::regclass)",
        "SELECT format('%s %s', last_value, is_called) FROM metrics_id_seq",
    ] {
        let value: Option<String> = client.query_one(sql, &[]).unwrap().get(0);
        out.push_str(&value.unwrap_or_default());
        out.push('\n');
    }
    out
}

/// The guide's own idempotency queries, verbatim (tests/fixtures/seed_queries): sound when the
/// first says total = unique and the second returns no row.
fn guide_says_sound(db: &TestDatabase) -> bool {
    let mut client = db.client();
    let idempotency = client
        .query_one(include_str!("fixtures/seed_queries/idempotency.sql"), &[])
        .unwrap();
    let (total, unique): (i64, i64) = (idempotency.get(0), idempotency.get(1));
    let duplicates = client
        .query(
            include_str!("fixtures/seed_queries/duplicate_metrics.sql"),
            &[],
        )
        .unwrap();
    total == unique && duplicates.is_empty()
}

/// The guide's unique key of metrics on each layout.
fn unique_key_of(layout: Layout) -> &'static str {
    match layout {
        Layout::Plain => "metrics_event_id_key",
        Layout::Partitioned => "metrics_event_id_timestamp_key",
    }
}

fn plant_every_anomaly(db: &TestDatabase, layout: Layout) {
    let unique_key = unique_key_of(layout);
    db.client()
        .batch_execute(&format!(
            "ALTER TABLE metrics DROP CONSTRAINT {unique_key};
             ALTER TABLE processed_events DROP CONSTRAINT processed_events_pkey;
             -- Two copies of e-010 and one of e-011 bypassing the guard, after the originals.
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
               SELECT sensor_id, event_id, timestamp, value + 1000 FROM metrics
               WHERE event_id IN ('e-010', 'e-011', 'e-010') ORDER BY id;
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
               SELECT sensor_id, event_id, timestamp + interval '1 second', value + 2000 FROM metrics
               WHERE event_id = 'e-010' AND value < 1000;
             -- A guard row twice.
             INSERT INTO processed_events (event_id, sensor_id, kafka_partition, kafka_offset)
               SELECT event_id, sensor_id, 9, 999 FROM processed_events WHERE event_id = 'e-020';
             -- Metrics whose guard row was bypassed, metrics lost.
             DELETE FROM processed_events WHERE event_id IN ('e-030', 'e-031');
             DELETE FROM metrics WHERE event_id IN ('e-040', 'e-041', 'e-042');
             -- As after a data-only restore.
             SELECT setval('metrics_id_seq', 5);"
        ))
        .unwrap();
}

fn write_events(path: &std::path::Path, count: usize) {
    let lines: Vec<String> = (0..count)
        .map(|i| {
            event_line(
                &format!("e-{i:03}"),
                &format!("s{}", i % 4),
                &format!("2026-03-01T00:{:02}:{:02}Z", i / 60, i % 60),
                i as f64,
            )
        })
        .collect();
    write_lines(path, &lines);
}

fn every_anomaly_is_repaired_exactly_and_check_passes_afterwards(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    write_events(&input, 100);
    let db = TestDatabase::new();
    db.migrate_as(layout);
    assert_eq!(db.replay(&[], &[&input]).0, 0);
    let original_value_of = |db: &TestDatabase, id: &str| -> i64 {
        db.scalar(&format!(
            "SELECT min(id) FROM metrics WHERE event_id = '{id}'"
        ))
    };
    let kept_e010 = original_value_of(&db, "e-010");
    plant_every_anomaly(&db, layout);
    db.metricsctl(&["check"]).assert().code(2);
    assert!(!guide_says_sound(&db));

    let real = a_dry_run_lists_what_the_repair_then_does(&db);
    the_first_copy_of_each_duplicated_metric_stays(&db, &real, kept_e010);
    guard_rows_constraints_and_the_sequence_are_mended(&db, layout);
    // Only the lost metrics remain, and only the operator releases them.
    db.metricsctl(&["check", "duplicates"]).assert().code(2);
    let released = repair(&db, &["--release-lost"], 0);
    assert_eq!(step(&released, "lost_metrics")["changed"], 3);
    db.metricsctl(&["check"]).assert().code(0);
    assert!(guide_says_sound(&db));
    assert_exactly_once(&db, 97);
    // A second run changes nothing; a replay now delivers the released events again.
    let again = repair(&db, &["--release-lost"], 0);
    assert_eq!(again["changed"], 0, "{again}");
    let (code, summary) = db.replay(&[], &[&input]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["inserted"], 3);
    assert_exactly_once(&db, 100);
}

/// A dry run lists exactly what the real run then does, and changes nothing; the real run mends
/// each planted anomaly, the lost metrics left to the operator. Returns the real run's report.
fn a_dry_run_lists_what_the_repair_then_does(db: &TestDatabase) -> Value {
    let before = snapshot(db);
    let dry = repair(db, &["--dry-run"], 1);
    assert_eq!(snapshot(db), before, "a dry run changes nothing");
    let real = repair(db, &[], 1);
    for kind in [
        "sequence",
        "duplicated_guard_rows",
        "duplicated_metrics",
        "unguarded_metrics",
        "lost_metrics",
    ] {
        assert_eq!(
            step(&dry, kind)["changed"],
            step(&real, kind)["changed"],
            "{kind}"
        );
        assert_eq!(
            step(&dry, kind)["rows"],
            step(&real, kind)["rows"],
            "{kind}"
        );
    }
    assert_eq!(step(&real, "sequence")["changed"], 1);
    assert_eq!(step(&real, "duplicated_guard_rows")["changed"], 1);
    assert_eq!(
        step(&real, "duplicated_guard_rows")["constraint_restored"],
        "processed_events_pkey"
    );
    assert_eq!(step(&real, "duplicated_metrics")["changed"], 3);
    assert_eq!(step(&real, "unguarded_metrics")["changed"], 2);
    assert_eq!(step(&real, "lost_metrics")["changed"], 3);
    assert_eq!(step(&real, "lost_metrics")["needs_operator"], true);
    real
}

/// The exact rows: the first copy of each duplicated metric stayed (e-010's with the id
/// `kept_e010`), with its value; the report names the copies removed.
fn the_first_copy_of_each_duplicated_metric_stays(db: &TestDatabase, real: &Value, kept_e010: i64) {
    let copies: Vec<(i64, f64)> = db
        .client()
        .query(
            "SELECT id, value FROM metrics WHERE event_id IN ('e-010', 'e-011') ORDER BY event_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[0], (kept_e010, 10.0));
    assert_eq!(copies[1].1, 11.0);
    let removed = step(real, "duplicated_metrics")["rows"].to_string();
    assert!(
        removed.contains("value 1010") && removed.contains("value 2010"),
        "{removed}"
    );
}

/// The first guard row of e-020 is the one kept, the bypassed metrics have guard rows, the
/// guide's constraints are back by their names and the sequence is past every id.
fn guard_rows_constraints_and_the_sequence_are_mended(db: &TestDatabase, layout: Layout) {
    // One guard row for e-020, the first one (not the Kafka 9/999 copy).
    let e020: Vec<Option<i32>> = db
        .client()
        .query(
            "SELECT kafka_partition FROM processed_events WHERE event_id = 'e-020'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(e020, vec![None]);
    // The bypassed metrics got guard rows from the metric, Kafka coordinates unknown.
    let added = db.count(
        "SELECT count(*) FROM processed_events WHERE event_id IN ('e-030', 'e-031') \
         AND sensor_id IN ('s2', 's3') AND kafka_partition IS NULL",
    );
    assert_eq!(added, 2);
    // The guide's constraints are back, by their names.
    let unique_key = unique_key_of(layout);
    for name in ["processed_events_pkey", unique_key] {
        assert_eq!(
            db.count(&format!(
                "SELECT count(*) FROM pg_constraint WHERE conname = '{name}'"
            )),
            1,
            "{name}"
        );
    }
    // The sequence is past every id: a new event goes in.
    assert_eq!(
        db.count(
            "SELECT count(*) FROM metrics_id_seq WHERE last_value >= (SELECT max(id) FROM metrics)"
        ),
        1
    );
    db.metricsctl(&["check", "sequence"]).assert().code(0);
}

fn replay_repair_restores_lost_metrics_exactly_once(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    write_events(&input, 300);
    let extra = dir.path().join("extra.jsonl");
    write_lines(
        &extra,
        &[event_line("new-1", "s", "2026-03-01T01:00:00Z", 1.0)],
    );
    let db = TestDatabase::new();
    db.migrate_as(layout);
    assert_eq!(db.replay(&[], &[&input]).0, 0);
    db.client()
        .batch_execute("DELETE FROM metrics WHERE event_id IN ('e-007', 'e-100', 'e-299')")
        .unwrap();
    // A plain replay calls them present: it cannot tell.
    let (_, plain) = db.replay(&["--dry-run"], &[&input]);
    assert_eq!(plain["restored"], 0);
    let (code, dry) = db.replay(&["--repair", "--dry-run"], &[&input, &extra]);
    assert_eq!(code, 0, "{dry}");
    assert_eq!(dry["restored"], 3);
    let (code, summary) = db.replay(
        &["--repair", "--jobs", "3", "--batch-size", "50"],
        &[&input, &extra],
    );
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["restored"], 3);
    assert_eq!(summary["inserted"], 1);
    assert_eq!(summary["already_present"], 297);
    assert_exactly_once(&db, 301);
    let value: f64 = db.scalar("SELECT value FROM metrics WHERE event_id = 'e-100'");
    assert_eq!(value, 100.0);
    let (_, again) = db.replay(&["--repair"], &[&input]);
    assert_eq!(again["restored"], 0);
    db.metricsctl(&["check", "duplicates"]).assert().code(0);
}

#[test]
fn retired_events_are_never_released_nor_restored() {
    let db = TestDatabase::new();
    db.metricsctl(&["migrate", "--partitioned"])
        .assert()
        .code(0);
    let old: chrono::NaiveDate = db.scalar(
        "SELECT CAST(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '8 months' AS date)",
    );
    let month = old.format("%Y-%m").to_string();
    db.metricsctl(&["partitions", "create", "--from", &month, "--months", "8"])
        .assert()
        .code(0);
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("old.jsonl");
    let lines: Vec<String> = (0..10)
        .map(|i| event_line(&format!("old-{i}"), "s", &format!("{old}T10:00:00Z"), 1.0))
        .collect();
    write_lines(&dump, &lines);
    assert_eq!(db.replay(&[], &[&dump]).0, 0);
    db.metricsctl(&["partitions", "drop", "--older-than", "6"])
        .assert()
        .code(0);
    let released = repair(&db, &["--release-lost"], 0);
    assert_eq!(step(&released, "lost_metrics")["changed"], 0);
    let (code, summary) = db.replay(&["--repair"], &[&dump]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["restored"], 0);
    assert_eq!(db.count("SELECT count(*) FROM metrics"), 0);
    assert_eq!(db.count("SELECT count(*) FROM processed_events"), 10);
}

fn a_repair_beside_a_concurrent_replay_loses_nothing(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.jsonl");
    let second = dir.path().join("second.jsonl");
    generate_events(&first, 2000, 10, 61, "jsonl");
    generate_events(&second, 150_000, 40, 62, "jsonl");
    let db = TestDatabase::new();
    db.migrate_as(layout);
    assert_eq!(db.replay(&[], &[&first]).0, 0);
    // Bypassed guard rows and a duplicated metric to repair while the replay writes.
    let unique_key = unique_key_of(layout);
    db.client()
        .batch_execute(&format!(
            "DELETE FROM processed_events WHERE event_id IN (SELECT event_id FROM metrics ORDER BY id LIMIT 50);
             ALTER TABLE metrics DROP CONSTRAINT {unique_key};
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
               SELECT sensor_id, event_id, timestamp, value FROM metrics ORDER BY id DESC LIMIT 5;"
        ))
        .unwrap();
    let replay = spawn_replay(&db, &["--batch-size", "1000"], &[&second]);
    crate::support::wait_until_writing_more_than(&db, 2000);
    let report = repair(&db, &["--lock-timeout", "60s"], 0);
    assert_eq!(step(&report, "unguarded_metrics")["changed"], 50);
    assert_eq!(step(&report, "duplicated_metrics")["changed"], 5);
    let output = replay.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    repair(&db, &[], 0);
    assert_exactly_once(&db, 152_000);
    db.metricsctl(&["check", "duplicates"]).assert().code(0);
}

#[test]
fn a_repair_that_cannot_lock_in_time_changes_nothing_and_says_who_to_look_for() {
    let db = TestDatabase::new();
    db.migrate();
    db.client()
        .batch_execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES ('s', 'a', now(), 1);
             SELECT setval('metrics_id_seq', 1, false);",
        )
        .unwrap();
    let before = snapshot(&db);
    // An open transaction that has written to metrics holds the lock inserts take.
    let mut blocker = db.client();
    let mut tx = blocker.transaction().unwrap();
    tx.batch_execute("UPDATE metrics SET value = value")
        .unwrap();
    let started = std::time::Instant::now();
    let output = db
        .metricsctl(&["repair", "--lock-timeout", "500ms"])
        .output()
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("could not lock metrics"), "{stderr}");
    let blocker_pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    assert!(stderr.contains(&format!("pid {blocker_pid} ")), "{stderr}");
    tx.rollback().unwrap();
    assert_eq!(snapshot(&db), before);
}

/// Keys under other names (a restore or a hand named them otherwise) are the keys still: replay
/// uses them, and repair gives them the guide's names rather than adding second ones.
fn keys_under_other_names_are_known_and_renamed(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let unique = unique_key_of(layout);
    db.client()
        .batch_execute(&format!(
            "ALTER TABLE processed_events RENAME CONSTRAINT processed_events_pkey TO pk_guard;
             ALTER TABLE metrics RENAME CONSTRAINT {unique} TO metrics_other_name;"
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    write_events(&events, 200);
    let (code, summary) = db.replay(&[], &[&events]);
    assert_eq!(code, 0, "{summary}");
    assert_exactly_once(&db, 200);

    let before = snapshot(&db);
    let dry = repair(&db, &["--dry-run"], 0);
    assert_eq!(snapshot(&db), before, "a dry run changes nothing");
    assert_eq!(
        step(&dry, "duplicated_guard_rows")["constraint_restored"],
        "processed_events_pkey (renamed from pk_guard)"
    );
    assert_eq!(
        step(&dry, "duplicated_metrics")["constraint_restored"],
        format!("{unique} (renamed from metrics_other_name)")
    );
    repair(&db, &[], 0);
    let keys: String = db.scalar(
        "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint
          WHERE conrelid IN ('metrics'::regclass, 'processed_events'::regclass) AND contype IN ('p', 'u')",
    );
    let expected = match layout {
        Layout::Plain => "metrics_event_id_key,metrics_pkey,processed_events_pkey",
        Layout::Partitioned => "metrics_event_id_timestamp_key,metrics_pkey,processed_events_pkey",
    };
    assert_eq!(keys, expected, "one key each, under the guide's names");
    let again = repair(&db, &[], 0);
    assert_eq!(
        step(&again, "duplicated_guard_rows")["constraint_restored"],
        Value::Null
    );
    let (code, summary) = db.replay(&[], &[&events]);
    assert_eq!(code, 0, "{summary}");
    assert_exactly_once(&db, 200);
}

crate::on_both_layouts!(
    keys_under_other_names_are_known_and_renamed,
    a_repair_beside_a_concurrent_replay_loses_nothing,
);

// Again on the distributed layout (Citus): the replay, check and repair paths that differ there.
crate::on_every_layout!(
    every_anomaly_is_repaired_exactly_and_check_passes_afterwards,
    replay_repair_restores_lost_metrics_exactly_once,
);
