//! Every run is bounded and cancellable (issue 18): behind a lock, `--timeout` (30s by default for
//! monitoring) cancels the statement, exits 3 and names who was in the way; SIGINT and SIGTERM
//! do the same at once; the server is left running nothing of ours.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::scenarios::{
    assert_says, generated_events, hold_metrics_exclusively, hold_the_guard, migrated_database,
    stderr_exiting,
};
use crate::support::{
    LockHolder, TestDatabase, metricsctl_process, stderr_of, stdout_of, wait_until,
};

/// Sessions of metricsctl still running a statement on this database.
fn metricsctl_statements_running(db: &TestDatabase) -> i64 {
    db.count(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = 'metricsctl' AND state = 'active' AND pid <> pg_backend_pid()",
    )
}

/// 20,000 generated events (`seed`, in the directory returned with them) and a migrated database
/// whose guard a session holds: every replay writer waits behind it, mid-batch.
fn events_and_a_held_guard(seed: u64) -> (tempfile::TempDir, PathBuf, TestDatabase, LockHolder) {
    let (dir, input) = generated_events(20_000, 20, seed);
    let db = migrated_database();
    let holder = hold_the_guard(&db);
    (dir, input, db, holder)
}

/// Sessions of metricsctl waiting on a lock in this database.
fn metricsctl_statements_waiting_on_a_lock(db: &TestDatabase) -> i64 {
    db.count(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = 'metricsctl' AND wait_event_type = 'Lock'",
    )
}

/// `metricsctl ARGS --database-url URL INPUTS` on this database in the background, its output
/// thrown away.
fn spawn_unheard(db: &TestDatabase, args: &[&str], inputs: &[&Path]) -> Child {
    metricsctl_process()
        .args(args)
        .args(["--database-url", &db.url])
        .args(inputs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills `run` outright: no handler runs and no cancel request is sent, so the server must notice
/// on its own (client_connection_check_interval, set in every transaction) and end `what` (its
/// statements) within 5 s.
fn kill_and_see_the_server_end(db: &TestDatabase, mut run: Child, what: &str) {
    run.kill().unwrap();
    run.wait().unwrap();
    let killed = Instant::now();
    wait_until(&format!("{what} to end"), || {
        metricsctl_statements_running(db) == 0
    });
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "the server kept {what} for {:?}",
        killed.elapsed()
    );
}

/// A database whose metrics a session holds ACCESS EXCLUSIVE (a VACUUM FULL, a DDL): every read
/// of it waits.
fn locked_database() -> (TestDatabase, LockHolder) {
    let db = migrated_database();
    let holder = hold_metrics_exclusively(&db);
    (db, holder)
}

#[test]
fn a_check_behind_a_lock_stops_at_its_timeout_and_names_the_holder() {
    let (db, mut holder) = locked_database();
    let holder_pid = holder.pid();
    for (args, format_line) in [
        (
            &["check", "--timeout", "2s", "--format", "nagios"][..],
            "METRICSCTL CHECKS UNKNOWN - timed out after 2s",
        ),
        (
            &["lag", "-t", "2s", "--format", "nagios"],
            "METRICSCTL LAG UNKNOWN - timed out after 2s",
        ),
        (
            &["check", "sequence", "-t", "2s", "--format", "nagios"],
            "METRICSCTL SEQUENCE UNKNOWN - timed out after 2s",
        ),
        (
            &["check", "--timeout", "2s", "--format", "prometheus"],
            "metricsctl_check_status{check=\"duplicates\"} 3",
        ),
    ] {
        let started = Instant::now();
        let output = db.metricsctl(args).output().unwrap();
        let took = started.elapsed();
        let (stdout, stderr) = (stdout_of(&output), stderr_of(&output));
        assert_eq!(output.status.code(), Some(3), "{args:?}: {stdout}{stderr}");
        assert!(took < Duration::from_secs(8), "{args:?} took {took:?}");
        assert!(stdout.contains(format_line), "{args:?}: {stdout}");
        for said in [
            "waiting for a lock".to_string(),
            format!("held by pid {holder_pid}"),
            "vacuum-full-metrics".to_string(),
            "idle in transaction".to_string(),
        ] {
            assert!(stderr.contains(&said), "{args:?}: no {said:?} in {stderr}");
        }
        // The cancel reached the server: nothing of ours is left waiting behind the lock.
        wait_until("metricsctl's statements to end", || {
            metricsctl_statements_running(&db) == 0
        });
    }
    holder.release();
    db.metricsctl(&["check", "--timeout", "2s"])
        .assert()
        .code(0);
}

#[test]
fn sigterm_and_ctrl_c_cancel_the_statement_and_report_unknown() {
    let (db, mut holder) = locked_database();
    let holder_pid = holder.pid();
    for (signal, name) in [
        (nix::sys::signal::Signal::SIGTERM, "SIGTERM"),
        (nix::sys::signal::Signal::SIGINT, "SIGINT"),
    ] {
        let check = metricsctl_process()
            .args(["check", "--format", "nagios", "--database-url", &db.url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("the check to wait behind the lock", || {
            metricsctl_statements_waiting_on_a_lock(&db) > 0
        });
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(check.id() as i32), signal).unwrap();
        let output = check.wait_with_output().unwrap();
        let (stdout, stderr) = (stdout_of(&output), stderr_of(&output));
        assert_eq!(output.status.code(), Some(3), "{name}: {stdout}{stderr}");
        assert!(
            stdout.starts_with(&format!(
                "METRICSCTL CHECKS UNKNOWN - interrupted by {name}"
            )),
            "{name}: {stdout}"
        );
        assert!(
            stderr.contains(&format!("held by pid {holder_pid}")),
            "{stderr}"
        );
        // Without the cancel request the server would go on waiting for the lock on behalf of a
        // client that is gone, until the holder lets go.
        wait_until("the cancelled statement to end", || {
            metricsctl_statements_running(&db) == 0
        });
    }
    holder.release();
}

#[test]
fn a_replay_at_its_timeout_says_how_far_it_got_and_a_rerun_finishes() {
    // Writers wait behind a lock on the guard: the limit runs out mid-batch.
    let (_dir, input, db, holder) = events_and_a_held_guard(61);
    let output = db
        .metricsctl(&["replay", "--timeout", "2s", "--format", "json"])
        .arg(&input)
        .output()
        .unwrap();
    let stderr = stderr_exiting(&output, 3);
    assert_says(
        &stderr,
        &[
            "timed out after 2s (--timeout)",
            "holding-the-guard",
            "rerun the same command",
        ],
    );
    let summary = crate::support::summary_of(&output);
    let claim = summary["committed_before"].as_str().unwrap().to_string();
    holder.release();
    crate::support::assert_claim_holds(&db, &[&input], &claim);
    crate::support::assert_consistent(&db);
    let (code, rerun) = db.replay(&[], &[&input]);
    assert_eq!(code, 0, "{rerun}");
    crate::support::assert_exactly_once(&db, 20_000);
}

#[test]
fn a_timeout_of_zero_means_no_limit_and_commands_say_their_default() {
    let db = TestDatabase::new();
    db.migrate();
    db.metricsctl(&["check", "--timeout", "0"]).assert().code(0);
    crate::support::metricsctl()
        .args(["--help"])
        .assert()
        .code(0)
        .stdout(predicates::str::contains(
            "30s by default for check, lag, rate and",
        ));
}

#[test]
fn a_replay_waiting_on_a_silent_pipe_stops_at_once_and_says_how_far_it_got() {
    let db = TestDatabase::new();
    db.migrate();
    let mut replay = metricsctl_process()
        .args(["replay", "--format", "json", "--database-url", &db.url, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = replay.stdin.take().unwrap();
    let lines: Vec<String> = (0..20)
        .map(|i| crate::support::event_line(&format!("e{i}"), "s1", "2026-01-01T00:00:00Z", 1.0))
        .collect();
    std::io::Write::write_all(&mut input, (lines.join("\n") + "\n").as_bytes()).unwrap();
    // The pipe stays open and silent, as a stalled producer's would.
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(replay.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = replay.wait_with_output().unwrap();
    drop(input);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(4), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(!stderr.contains("did not end within"), "{stderr}");
    let summary = crate::support::summary_of(&output);
    assert_eq!(summary["complete"], false, "{summary}");
    assert!(summary["committed_before"].is_string(), "{summary}");
    crate::support::assert_consistent(&db);
}

#[test]
fn time_limits_are_kept_at_their_edges() {
    let db = TestDatabase::new();
    db.migrate();
    // Too long for a statement timeout: refused as an argument.
    db.metricsctl(&["check", "--timeout", "25days"])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("most this accepts"));
    // Shorter than the run: it is UNKNOWN and says so, never a verdict past its limit.
    db.metricsctl(&["check", "--timeout", "1ms"])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("timed out after 1ms"));
    db.metricsctl(&["check", "--timeout", "24days"])
        .assert()
        .code(0);
}

#[test]
fn a_killed_run_leaves_nothing_waiting_on_the_server() {
    let (db, holder) = locked_database();
    let check = spawn_unheard(&db, &["check", "--timeout", "0"], &[]);
    wait_until("the check to wait behind the lock", || {
        metricsctl_statements_running(&db) > 0
    });
    kill_and_see_the_server_end(&db, check, "the killed run's statement");
    holder.release();
}

#[test]
fn a_killed_replay_waiting_behind_a_lock_leaves_nothing_waiting_on_the_server() {
    // A batch's parameters run to hundreds of kilobytes: were the replay's statement to wait for
    // the lock while it is parsed, the server would not have read them, and would not notice the
    // client go until the lock is released.
    let (_dir, input, db, holder) = events_and_a_held_guard(62);
    let replay = spawn_unheard(&db, &["replay", "--jobs", "2"], &[&input]);
    wait_until("the writers to wait behind the lock", || {
        metricsctl_statements_waiting_on_a_lock(&db) == 2
    });
    kill_and_see_the_server_end(&db, replay, "the killed replay's statements");
    holder.release();
    crate::support::assert_consistent(&db);
}

#[test]
fn a_check_outlasting_its_timeout_with_nothing_in_its_way_says_so_and_what_to_do() {
    // 20,000 events, and a planner allowed no hash, merge or index joins in this database: the
    // full duplicates check then compares every guard row with every metric, seconds of work with
    // no lock in front of it (what a whole-table check on a big table is).
    let (_dir, input) = generated_events(20_000, 20, 63);
    let db = migrated_database();
    let (code, summary) = db.replay(&[], &[&input]);
    assert_eq!(code, 0, "{summary}");
    let mut client = db.client();
    for setting in [
        "enable_hashjoin",
        "enable_mergejoin",
        "enable_indexscan",
        "enable_indexonlyscan",
        "enable_bitmapscan",
    ] {
        client
            .batch_execute(&format!(
                "ALTER DATABASE \"{}\" SET {setting} = off",
                db.name
            ))
            .unwrap();
    }
    let started = Instant::now();
    let output = db
        .metricsctl(&["check", "duplicates", "--timeout", "1s"])
        .output()
        .unwrap();
    let stderr = stderr_exiting(&output, 3);
    assert_says(
        &stderr,
        &[
            "timed out after 1s (--timeout)",
            "its statement was cancelled: it was running",
            "Nothing blocked it",
            "Raise --timeout (0: no limit)",
            "with --since",
        ],
    );
    assert!(!stderr.contains("pg_terminate_backend"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "{stderr}");
    wait_until("the cancelled check to end", || {
        metricsctl_statements_running(&db) == 0
    });
}
