//! Exactly once under faults: a replay killed at a random moment, PostgreSQL restarted under a
//! replay, two overlapping replays at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metricsctl::db::sandbox::{Sandbox, SandboxOptions};

use crate::support::proxy::ResettingProxy;
use crate::support::{
    Layout, TestDatabase, assert_claim_holds, assert_consistent, assert_exactly_once,
    generate_events, hold_the_writers, metricsctl_process, slice_lines, spawn_replay,
    spawn_replay_at, stderr_of, summary_of, wait_until_writing, wait_until_writing_more_than,
};

/// A different moment every run; printed so a failure can be replayed by hand.
fn random_millis(low: u64, high: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    low + nanos % (high - low)
}

fn a_replay_killed_at_random_moments_finishes_exactly_once_when_rerun(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    generate_events(&input, 150_000, 40, 21, "jsonl");
    let db = TestDatabase::new();
    db.migrate_as(layout);
    for round in 1..=3 {
        // Kill only once this round has written something (a kill before its first batch would
        // test nothing), then at a random moment.
        let before = db.count("SELECT count(*) FROM processed_events");
        let mut replay = spawn_replay(&db, &["--batch-size", "2000"], &[&input]);
        wait_until_writing_more_than(&db, before);
        let delay = random_millis(0, 800);
        std::thread::sleep(Duration::from_millis(delay));
        replay.kill().unwrap(); // SIGKILL
        replay.wait().unwrap();
        let committed = assert_consistent(&db);
        eprintln!(
            "round {round}: killed {delay} ms into writing with {committed} events committed"
        );
    }
    let output = metricsctl_process()
        .args(["replay", "--format", "json", "--database-url", &db.url])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let summary = summary_of(&output);
    assert_eq!(
        summary["inserted"].as_i64().unwrap() + summary["already_present"].as_i64().unwrap(),
        150_000
    );
    assert_exactly_once(&db, 150_000);
}

fn a_postgres_restart_under_a_replay_is_a_clear_error_and_a_rerun_completes(layout: Layout) {
    let server = Sandbox::start(&SandboxOptions::default()).expect("starting PostgreSQL");
    let db = TestDatabase::on_server(&server.url("postgres"));
    db.migrate_as(layout);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    generate_events(&input, 300_000, 40, 22, "jsonl");

    let replay = spawn_replay(&db, &["--batch-size", "2000"], &[&input]);
    // Restart only once the replay is writing (under load it can take a while to get going;
    // restarting before it connects would test the connect error instead), then at a random moment.
    wait_until_writing(&db);
    std::thread::sleep(Duration::from_millis(random_millis(50, 600)));
    server.restart().expect("restarting PostgreSQL");
    let output = replay.wait_with_output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("To finish, rerun the same command"),
        "{stderr}"
    );
    // Either the server said why (57P01 on a fast shutdown), or the socket broke and the message
    // says the connection was lost and the socket's reason — never the driver's bare
    // "error communicating with the server".
    assert!(
        stderr.contains("57P01") || stderr.contains("the connection to PostgreSQL was lost"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("error communicating with the server."),
        "{stderr}"
    );
    assert!(stderr.contains("writing the batch starting at"), "{stderr}");
    assert_consistent(&db);
    the_claim_holds_and_a_rerun_completes(&db, &input, &output, 300_000);
}

/// The "every event before FILE:LINE is committed" of a stopped replay is printed and true, and
/// the same replay again ends with each of the `events` stored exactly once.
fn the_claim_holds_and_a_rerun_completes(
    db: &TestDatabase,
    input: &std::path::Path,
    stopped: &std::process::Output,
    events: i64,
) {
    let claim = summary_of(stopped)["committed_before"]
        .as_str()
        .unwrap()
        .to_string();
    let stderr = stderr_of(stopped);
    assert!(stderr.contains(&claim), "{stderr}");
    assert_claim_holds(db, &[input], &claim);

    let rerun = metricsctl_process()
        .args(["replay", "--database-url", &db.url])
        .arg(input)
        .output()
        .unwrap();
    assert_eq!(rerun.status.code(), Some(0), "{}", stderr_of(&rerun));
    assert_exactly_once(db, events);
}

/// The network breaks under a replay (a reset, no word from the server): the message says the
/// connection was lost and why, the claim holds, and a rerun finishes exactly once.
#[test]
fn a_connection_reset_under_a_replay_says_the_connection_was_lost_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    generate_events(&input, 100_000, 40, 24, "jsonl");
    let db = TestDatabase::new();
    db.migrate_as(Layout::Plain);
    let proxy = ResettingProxy::start(&db);
    let replay = spawn_replay_at(&proxy.url, &["--batch-size", "2000"], &[&input]);
    wait_until_writing(&db);
    // A batch is surely in flight when the network goes.
    let holder = hold_the_writers(&db);
    proxy.reset_all();
    holder.release();
    let output = replay.wait_with_output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    // The socket's own reason follows: "Connection reset by peer" for a writer waiting on its
    // batch, "Broken pipe" for one that was sending the next.
    assert!(
        stderr.contains("the connection to PostgreSQL was lost (Connection reset by peer")
            || stderr.contains("the connection to PostgreSQL was lost (Broken pipe"),
        "{stderr}"
    );
    assert!(
        stderr.contains("To finish, rerun the same command"),
        "{stderr}"
    );
    assert_consistent(&db);
    // The server may still be finishing the batch it was sent; the claim holds whatever it does.
    the_claim_holds_and_a_rerun_completes(&db, &input, &output, 100_000);
}

fn two_overlapping_replays_at_once_both_finish_and_nothing_is_duplicated(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.jsonl");
    generate_events(&all, 60_000, 30, 23, "jsonl");
    let first = dir.path().join("first.jsonl");
    let second = dir.path().join("second.jsonl");
    slice_lines(&all, &first, 0, 40_000);
    slice_lines(&all, &second, 20_000, 40_000);
    let db = TestDatabase::new();
    db.migrate_as(layout);

    let replays: Vec<_> = [&first, &second]
        .iter()
        .map(|input| spawn_replay(&db, &["--batch-size", "500"], &[input]))
        .collect();
    let mut inserted = 0;
    let mut present = 0;
    for replay in replays {
        let output = replay.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        let summary = summary_of(&output);
        inserted += summary["inserted"].as_i64().unwrap();
        present += summary["already_present"].as_i64().unwrap();
    }
    assert_eq!(inserted, 60_000);
    assert_eq!(present, 20_000);
    assert_exactly_once(&db, 60_000);
}

crate::on_both_layouts!(a_postgres_restart_under_a_replay_is_a_clear_error_and_a_rerun_completes,);

// Again on the distributed layout (Citus): the replay, check and repair paths that differ there.
crate::on_every_layout!(
    a_replay_killed_at_random_moments_finishes_exactly_once_when_rerun,
    two_overlapping_replays_at_once_both_finish_and_nothing_is_duplicated,
);
