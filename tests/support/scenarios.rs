//! Set-ups several test modules share: a file of generated events, the locks a test holds to
//! keep metricsctl waiting, and reading a finished run's verdict.

use std::path::PathBuf;
use std::process::Output;

use super::{LockHolder, TestDatabase, generate_events, roles, stderr_of, write_lines};

/// A temporary directory holding `events.jsonl`: `count` generated events over `sensors`
/// sensors. The file lives as long as the directory returned with it.
pub fn generated_events(count: u64, sensors: u32, seed: u64) -> (tempfile::TempDir, PathBuf) {
    generated_file("events.jsonl", count, sensors, seed)
}

/// `generated_events`, in a JSON-lines file called `name`.
pub fn generated_file(
    name: &str,
    count: u64,
    sensors: u32,
    seed: u64,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join(name);
    generate_events(&events, count, sensors, seed, "jsonl");
    (dir, events)
}

/// A temporary directory holding a file called `name` of `lines` (see `event_line`). The file
/// lives as long as the directory returned with it.
pub fn written_file(name: &str, lines: &[String]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    write_lines(&path, lines);
    (dir, path)
}

/// A fresh database with metricsctl's schema (the plain layout).
pub fn migrated_database() -> TestDatabase {
    let db = TestDatabase::new();
    db.migrate();
    db
}

/// A session holding SHARE on the guard (`processed_events`) as `holding-the-guard`: every
/// replay writer waits behind it, mid-batch.
pub fn hold_the_guard(db: &TestDatabase) -> LockHolder {
    LockHolder::table(
        db,
        "holding-the-guard",
        "LOCK TABLE processed_events IN SHARE MODE",
    )
}

/// A session holding ACCESS EXCLUSIVE on metrics as `vacuum-full-metrics` (as a VACUUM FULL or a
/// DDL would): every read of metrics waits behind it.
pub fn hold_metrics_exclusively(db: &TestDatabase) -> LockHolder {
    LockHolder::table(
        db,
        "vacuum-full-metrics",
        "LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE",
    )
}

/// What a finished run said on stderr, having checked that it exited with `code`.
pub fn stderr_exiting(output: &Output, code: i32) -> String {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    stderr
}

/// Checks that `said` contains every one of `expected`, printing all of `said` where not.
pub fn assert_says(said: &str, expected: &[&str]) {
    for text in expected {
        assert!(said.contains(text), "{said}");
    }
}

/// The owner applies the grants the test roles' monitor and writer need (`grants --apply`),
/// which must work.
pub fn grant_the_monitor_and_the_writer(db: &TestDatabase) {
    let roles = roles();
    db.metricsctl_as(
        &roles.owner,
        &[
            "grants",
            "--monitor",
            &roles.monitor,
            "--writer",
            &roles.writer,
            "--apply",
        ],
    )
    .assert()
    .code(0);
}

/// The text `field` of each object in the JSON array `array`, in order.
pub fn texts_of<'a>(array: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    array
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap())
        .collect()
}
