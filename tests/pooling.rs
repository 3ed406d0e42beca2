//! metricsctl through a real pgbouncer (issue 19): in transaction pooling, where each transaction
//! may land on another server connection, and in session pooling. Every command works as it does
//! directly, or (the online conversion) refuses before it changes anything; nothing is left held
//! or prepared on the pooled server connections for the next client.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use metricsctl::db::sandbox::{Sandbox, SandboxOptions};
use nix::sys::signal::Signal;

use crate::support::pgbouncer::{Pgbouncer, Pool, PoolMode};
use crate::support::scenarios::{
    assert_says, generated_events, hold_metrics_exclusively, hold_the_guard,
};
use crate::support::*;

/// A server of this test's own, a database on it, and pgbouncer in front of it.
fn pooled(test: &str, pool: Pool) -> Option<Pooled> {
    let server = Sandbox::start(&SandboxOptions::default()).expect("starting PostgreSQL");
    let bouncer = Pgbouncer::start(test, server.port(), pool)?;
    let db = TestDatabase::on_server(&server.url("postgres"));
    Some(Pooled {
        bouncer,
        db,
        server,
    })
}

/// Runs `body` on pgbouncer (`pool`) in front of a database of a server of its own; `None`
/// (having said NOT RUN) where pgbouncer is not installed. All is stopped when `body` returns.
fn in_a_pool<R>(
    test: &str,
    pool: Pool,
    body: impl FnOnce(&Pgbouncer, &TestDatabase) -> R,
) -> Option<R> {
    let pooled = pooled(test, pool)?;
    Some(body(&pooled.bouncer, &pooled.db))
}

/// `in_a_pool`, with metricsctl's schema migrated directly on the server first: most tests' start.
fn in_a_migrated_pool<R>(
    test: &str,
    pool: Pool,
    body: impl FnOnce(&Pgbouncer, &TestDatabase) -> R,
) -> Option<R> {
    in_a_pool(test, pool, |bouncer, db| {
        db.migrate();
        body(bouncer, db)
    })
}

/// Dropped in this order: pgbouncer, the database, the server.
struct Pooled {
    bouncer: Pgbouncer,
    db: TestDatabase,
    #[allow(dead_code)]
    server: Sandbox,
}

fn metricsctl_through(bouncer: &Pgbouncer, db: &TestDatabase, args: &[&str]) -> Output {
    metricsctl()
        .args(args)
        .arg("--database-url")
        .arg(bouncer.url(&db.name))
        .output()
        .unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// Advisory locks anyone holds in the test database, read directly on the server.
fn advisory_locks(db: &TestDatabase) -> i64 {
    db.count(
        "SELECT count(*) FROM pg_locks
          WHERE locktype = 'advisory'
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
}

/// Sessions of the test database waiting on a lock, read directly on the server.
fn waiting_on_a_lock(db: &TestDatabase) -> i64 {
    db.count(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
           AND wait_event_type = 'Lock'",
    )
}

/// What a client of the pool finds on the server connection it is handed, asked with psql
/// (simple protocol, which any pool passes): prepared statements, the search path, jit and the
/// statement timeout. Asked several times, so each of the pool's server connections answers.
fn what_pooled_connections_hold(bouncer: &Pgbouncer, db: &TestDatabase) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..6 {
        let output = std::process::Command::new(pg_tool("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(bouncer.url(&db.name))
            .args([
                "-c",
                "SELECT (SELECT count(*) FROM pg_prepared_statements) || ' prepared, search_path '
                        || current_setting('search_path') || ', jit ' || current_setting('jit')
                        || ', statement_timeout ' || current_setting('statement_timeout')
                        || ', TimeZone ' || current_setting('TimeZone')
                        || ', client_connection_check_interval '
                        || current_setting('client_connection_check_interval')",
            ])
            .output()
            .expect("running psql");
        assert!(
            output.status.success(),
            "psql: {}\npgbouncer log:\n{}",
            stderr_of(&output),
            bouncer.log()
        );
        let line = stdout_of(&output).trim().to_string();
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    seen
}

/// Every pooled server connection is as a new client expects it (the server's own TimeZone,
/// read directly), and no advisory lock is held.
fn assert_pool_clean(bouncer: &Pgbouncer, db: &TestDatabase) {
    let server_timezone = db.scalar::<String>("SHOW TimeZone");
    let clean = format!(
        "0 prepared, search_path \"$user\", public, jit {}, statement_timeout 0, TimeZone \
         {server_timezone}, client_connection_check_interval 0",
        db.scalar::<String>("SHOW jit")
    );
    assert_eq!(
        what_pooled_connections_hold(bouncer, db),
        vec![clean],
        "a pooled server connection kept something of metricsctl's; pgbouncer log:\n{}",
        bouncer.log()
    );
    assert_eq!(advisory_locks(db), 0, "an advisory lock outlived its run");
}

#[test]
fn four_migrates_at_once_through_transaction_pooling_leave_no_lock_held() {
    in_a_pool(
        "four_migrates_at_once_through_transaction_pooling_leave_no_lock_held",
        Pool::new(PoolMode::Transaction, 2),
        |bouncer, db| {
            let url = bouncer.url(&db.name);
            let runs: Vec<_> = (0..4)
                .map(|_| {
                    metricsctl_process()
                        .args(["migrate", "--partitioned", "--database-url", &url])
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for run in runs {
                let output = run.wait_with_output().unwrap();
                assert_eq!(code(&output), 0, "migrate: {}", stderr_of(&output));
            }
            assert_eq!(advisory_locks(db), 0, "the migration lock is still held");
            assert_eq!(
                db.count("SELECT count(*) FROM refinery_schema_history"),
                db.count("SELECT count(DISTINCT version) FROM refinery_schema_history"),
                "a migration was recorded twice"
            );
            assert!(db.relation_exists("metrics_default"), "not partitioned");

            // Directly, at once: nothing waits for a session that no longer exists.
            let started = Instant::now();
            db.metricsctl(&["migrate", "--lock-timeout", "5s"])
                .assert()
                .code(0);
            assert!(started.elapsed() < Duration::from_secs(5));
            assert_pool_clean(bouncer, db);
        },
    );
}

/// `args` run directly and through the pool (in that order), having checked that both exit with
/// the same code.
fn run_directly_and_through(
    bouncer: &Pgbouncer,
    db: &TestDatabase,
    args: &[&str],
) -> (Output, Output) {
    let direct = db.metricsctl(args).output().unwrap();
    let pooled = metricsctl_through(bouncer, db, args);
    assert_eq!(
        code(&pooled),
        code(&direct),
        "{args:?} through the pool: {}\ndirectly: {}",
        stderr_of(&pooled),
        stderr_of(&direct)
    );
    (direct, pooled)
}

/// `args` directly and through the pool: the same exit code, and the same JSON but for `skip`.
fn same_as_directly(bouncer: &Pgbouncer, db: &TestDatabase, args: &[&str], skip: &[&str]) -> i32 {
    let (direct, pooled) = run_directly_and_through(bouncer, db, args);
    let strip = |output: &Output| {
        let mut json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout_of(output)));
        strip_fields(&mut json, skip);
        json
    };
    assert_eq!(strip(&pooled), strip(&direct), "{args:?}");
    code(&direct)
}

/// Removes fields (timings, the clock) that differ between two runs of the same command.
fn strip_fields(json: &mut serde_json::Value, skip: &[&str]) {
    match json {
        serde_json::Value::Object(map) => {
            map.retain(|key, _| !skip.contains(&key.as_str()));
            map.values_mut().for_each(|value| strip_fields(value, skip));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| strip_fields(v, skip)),
        _ => {}
    }
}

/// The JSON fields that read the clock or time the run: they differ between any two runs.
const TIMINGS: [&str; 5] = [
    "elapsed_seconds",
    "events_per_second",
    "elapsed_ms",
    "checked_at",
    "now",
];

fn replay_lag_checks_and_repair_through(pool: Pool, test: &str) {
    in_a_migrated_pool(test, pool, |bouncer, db| {
        let (_dir, events) = generated_events(20_000, 40, 19);
        let events = events.to_str().unwrap();
        replays_through_the_pool_store_each_event_once(bouncer, db, events);
        reads_and_dry_runs_through_the_pool_answer_as_directly(bouncer, db, events);
        lag_and_rate_through_the_pool_give_the_direct_verdict(bouncer, db);
        assert_pool_clean(bouncer, db);
    });
}

/// A replay with four writers through the pool stores each of the 20,000 events once, and the
/// same file again adds nothing: no batch is lost or doubled when a transaction changes server
/// connection.
fn replays_through_the_pool_store_each_event_once(
    bouncer: &Pgbouncer,
    db: &TestDatabase,
    events: &str,
) {
    let replay = metricsctl_through(
        bouncer,
        db,
        &[
            "replay",
            "--jobs",
            "4",
            "--batch-size",
            "500",
            "--format",
            "json",
            events,
        ],
    );
    assert_eq!(code(&replay), 0, "replay: {}", stderr_of(&replay));
    assert_eq!(
        summary_of(&replay)["inserted"],
        20_000,
        "{}",
        stdout_of(&replay)
    );
    assert_exactly_once(db, 20_000);

    // The same file again, through the pool: nothing new.
    let again = metricsctl_through(
        bouncer,
        db,
        &["replay", "--jobs", "4", "--format", "json", events],
    );
    assert_eq!(code(&again), 0, "replay again: {}", stderr_of(&again));
    assert_eq!(summary_of(&again)["inserted"], 0);
    assert_exactly_once(db, 20_000);
}

/// Checks, migrate status and the dry runs say through the pool what they say directly, to the
/// field (but for timings); check all passes.
fn reads_and_dry_runs_through_the_pool_answer_as_directly(
    bouncer: &Pgbouncer,
    db: &TestDatabase,
    events: &str,
) {
    assert_eq!(
        same_as_directly(bouncer, db, &["check", "all", "--format", "json"], &TIMINGS),
        0
    );
    for args in [
        &["check", "duplicates", "--format", "json"][..],
        &[
            "check",
            "ordering",
            "--sensor",
            "sensor_001",
            "--format",
            "json",
        ],
        &["migrate", "status", "--format", "json"],
        &["repair", "--dry-run", "--format", "json"],
        &["replay", "--dry-run", "--format", "json", events],
    ] {
        same_as_directly(bouncer, db, args, &TIMINGS);
    }
}

/// lag and rate read the clock: through the pool, the same verdict as directly and JSON, each
/// with its own figures.
fn lag_and_rate_through_the_pool_give_the_direct_verdict(bouncer: &Pgbouncer, db: &TestDatabase) {
    for args in [
        &["lag", "--format", "json"][..],
        &["rate", "--format", "json"],
    ] {
        let (_, pooled) = run_directly_and_through(bouncer, db, args);
        serde_json::from_slice::<serde_json::Value>(&pooled.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout_of(&pooled)));
    }
}

#[test]
fn replay_checks_lag_rate_and_repair_work_through_transaction_pooling_and_leave_the_pool_clean() {
    replay_lag_checks_and_repair_through(
        Pool::new(PoolMode::Transaction, 2),
        "replay_checks_lag_rate_and_repair_work_through_transaction_pooling_and_leave_the_pool_clean",
    );
}

#[test]
fn replay_checks_lag_rate_and_repair_work_through_session_pooling() {
    // Session pooling gives each client a server connection of its own: replay --jobs 4 needs
    // five.
    replay_lag_checks_and_repair_through(
        Pool::new(PoolMode::Session, 6),
        "replay_checks_lag_rate_and_repair_work_through_session_pooling",
    );
}

fn plain_table_with_events(db: &TestDatabase, count: u64) {
    db.migrate();
    let (_dir, events) = generated_events(count, 20, 7);
    let (code, summary) = db.replay(&[], &[&events]);
    assert_eq!(code, 0, "{summary}");
}

#[test]
fn the_online_conversion_refuses_transaction_pooling_before_it_changes_anything() {
    in_a_pool(
        "the_online_conversion_refuses_transaction_pooling_before_it_changes_anything",
        Pool::new(PoolMode::Transaction, 2),
        |bouncer, db| {
            plain_table_with_events(db, 2_000);
            let before = schema_dump(db);

            let enable = metricsctl_through(bouncer, db, &["partitions", "enable"]);
            assert_eq!(code(&enable), 3, "{}", stderr_of(&enable));
            let said = stderr_of(&enable);
            assert!(
                said.contains("transaction-pooling proxy") && said.contains("Nothing was changed"),
                "{said}"
            );
            assert_eq!(
                schema_dump(db),
                before,
                "the refused conversion changed the schema"
            );
            assert!(!db.relation_exists("metricsctl_conversion"));
            assert_pool_clean(bouncer, db);

            // The offline form is one transaction, which any pool carries.
            let offline = metricsctl_through(bouncer, db, &["partitions", "enable", "--offline"]);
            assert_eq!(code(&offline), 0, "{}", stderr_of(&offline));
            assert!(db.relation_exists("metrics_default"));
            assert_exactly_once(db, 2_000);
            let create =
                metricsctl_through(bouncer, db, &["partitions", "create", "--months", "3"]);
            assert_eq!(code(&create), 0, "{}", stderr_of(&create));
            assert_pool_clean(bouncer, db);
        },
    );
}

#[test]
fn the_online_conversion_works_through_session_pooling() {
    in_a_pool(
        "the_online_conversion_works_through_session_pooling",
        Pool::new(PoolMode::Session, 6),
        |bouncer, db| {
            plain_table_with_events(db, 2_000);
            let enable = metricsctl_through(bouncer, db, &["partitions", "enable"]);
            assert_eq!(code(&enable), 0, "{}", stderr_of(&enable));
            assert!(db.relation_exists("metrics_default"));
            assert!(!db.relation_exists("metricsctl_conversion"));
            assert_exactly_once(db, 2_000);
            assert_eq!(advisory_locks(db), 0);
        },
    );
}

#[test]
fn pgoptions_through_pgbouncer_is_refused_by_it_not_dropped() {
    in_a_migrated_pool(
        "pgoptions_through_pgbouncer_is_refused_by_it_not_dropped",
        Pool::new(PoolMode::Transaction, 2),
        |bouncer, db| {
            let output = metricsctl()
                .env("PGOPTIONS", "-c search_path=telemetry")
                .args(["check", "all", "--database-url", &bouncer.url(&db.name)])
                .output()
                .unwrap();
            assert_eq!(code(&output), 3, "{}", stdout_of(&output));
            let said = stderr_of(&output);
            assert!(
                said.contains("unsupported startup parameter") && said.contains("PGOPTIONS"),
                "{said}"
            );
        },
    );
}

#[test]
fn a_session_pool_smaller_than_the_replay_names_the_pool_size_and_loses_nothing() {
    // Two server connections, and a client waits at most 2 s for one.
    let pool = Pool {
        query_wait_timeout_seconds: 2,
        ..Pool::new(PoolMode::Session, 2)
    };
    in_a_migrated_pool(
        "a_session_pool_smaller_than_the_replay_names_the_pool_size_and_loses_nothing",
        pool,
        |bouncer, db| {
            let (_dir, events) = generated_events(5_000, 10, 3);
            let events = events.to_str().unwrap();

            // Four connections wanted, two to be had: the writers that get none wait until
            // pgbouncer gives up on them, which is said before anything is read or written.
            let replay = metricsctl_through(
                bouncer,
                db,
                &["replay", "--jobs", "4", "--batch-size", "200", events],
            );
            assert_eq!(code(&replay), 3, "{}", stderr_of(&replay));
            let said = stderr_of(&replay);
            assert!(
                said.contains("of 4 got no answer")
                    && said.contains("Nothing was written")
                    && said.contains("default_pool_size"),
                "{said}"
            );
            assert_eq!(db.count("SELECT count(*) FROM processed_events"), 0);
            assert_eq!(db.count("SELECT count(*) FROM metrics"), 0);

            // Following the advice finishes the job, each event once.
            let rerun = metricsctl_through(bouncer, db, &["replay", "--jobs", "1", events]);
            assert_eq!(code(&rerun), 0, "{}", stderr_of(&rerun));
            assert_exactly_once(db, 5_000);
        },
    );
}

/// `check --timeout 2s --format nagios` through the pool (a test holds metrics exclusively
/// first): its output, and when it started.
fn nagios_check_with_a_2s_timeout_through(
    bouncer: &Pgbouncer,
    db: &TestDatabase,
) -> (Output, Instant) {
    let started = Instant::now();
    let output = metricsctl_through(
        bouncer,
        db,
        &["check", "--timeout", "2s", "--format", "nagios"],
    );
    (output, started)
}

#[test]
fn a_check_through_transaction_pooling_stops_at_its_timeout_and_its_cancel_gets_through() {
    in_a_migrated_pool(
        "a_check_through_transaction_pooling_stops_at_its_timeout_and_its_cancel_gets_through",
        Pool::new(PoolMode::Transaction, 2),
        |bouncer, db| {
            let mut holder = hold_metrics_exclusively(db);
            let holder_pid = holder.pid();
            let (output, started) = nagios_check_with_a_2s_timeout_through(bouncer, db);
            assert_eq!(code(&output), 3, "{}", stderr_of(&output));
            assert!(started.elapsed() < Duration::from_secs(8));
            let said = stderr_of(&output);
            assert!(
                said.contains(&format!("held by pid {holder_pid}"))
                    && said.contains("vacuum-full-metrics"),
                "{said}"
            );
            // pgbouncer forwarded the cancel: no statement of ours waits on behind the lock,
            // holding a server connection of the pool.
            wait_until("the cancelled statement to end", || {
                db.count(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
               AND state = 'active' AND pid <> pg_backend_pid()",
                ) == 0
            });
            holder.release();
            assert_pool_clean(bouncer, db);
            let again = metricsctl_through(bouncer, db, &["check", "--timeout", "5s"]);
            assert_eq!(code(&again), 0, "{}", stderr_of(&again));
        },
    );
}

/// A replay through the pool of `events` generated events, stopped by a signal once its three
/// writers all wait behind the lock a session of the test holds on the guard (still held).
struct StoppedReplay {
    _dir: tempfile::TempDir,
    input: PathBuf,
    events: i64,
    holder: LockHolder,
    output: Output,
    /// When the signal was sent.
    stopped_at: Instant,
}

/// Replays `events` generated events (`seed`) through the pool with `args` (three writers),
/// holds the guard, and sends `signal` once every writer waits behind it.
fn replay_stopped_behind_the_guard(
    (bouncer, db): (&Pgbouncer, &TestDatabase),
    (events, seed): (u64, u64),
    args: &[&str],
    signal: Signal,
) -> StoppedReplay {
    let (dir, input) = generated_events(events, 30, seed);
    let holder = hold_the_guard(db);
    let replay = spawn_replay_at(&bouncer.url(&db.name), args, &[&input]);
    wait_until("the writers to wait behind the lock", || {
        waiting_on_a_lock(db) == 3
    });
    let stopped_at = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(replay.id() as i32), signal).unwrap();
    StoppedReplay {
        _dir: dir,
        input,
        events: events as i64,
        holder,
        output: replay.wait_with_output().unwrap(),
        stopped_at,
    }
}

/// Once the stopped replay is gone and the guard released: what it committed is there once, the
/// pooler is up with its connections clean, and a rerun with `jobs` writers stores every event
/// once.
fn the_pool_is_clean_and_a_rerun_finishes(
    bouncer: &Pgbouncer,
    db: &TestDatabase,
    stopped: StoppedReplay,
    jobs: &str,
) -> Output {
    stopped.holder.release();
    // pgbouncer keeps its idle server connections, so no waiting for sessions to end: the
    // replay's statements are gone already.
    let committed = db.count("SELECT count(*) FROM processed_events");
    assert_exactly_once(db, committed);
    assert_pool_clean(bouncer, db);
    let rerun = metricsctl_through(
        bouncer,
        db,
        &["replay", "--jobs", jobs, stopped.input.to_str().unwrap()],
    );
    assert_eq!(code(&rerun), 0, "{}", stderr_of(&rerun));
    assert_exactly_once(db, stopped.events);
    stopped.output
}

/// A replay through transaction pooling (`size` server connections), its three writers waiting
/// behind a lock on the guard, stopped by SIGTERM: its output, once every statement of it is gone
/// from the server, having said it was interrupted by SIGTERM and each of `says`. The pooler is
/// still up and its connections clean; a rerun finishes.
fn replay_stopped_by_sigterm_through(test: &str, size: u32, says: &[&str]) -> Option<Output> {
    in_a_migrated_pool(
        test,
        Pool::new(PoolMode::Transaction, size),
        |bouncer, db| {
            let stopped = replay_stopped_behind_the_guard(
                (bouncer, db),
                (60_000, 23),
                &["--jobs", "3", "--batch-size", "500"],
                Signal::SIGTERM,
            );
            let output = &stopped.output;
            assert_eq!(code(output), 3, "{}", stderr_of(output));
            assert!(stopped.stopped_at.elapsed() < Duration::from_secs(10));
            // Cancelled, or abandoned and noticed by the server: nothing of the replay still
            // waits.
            wait_until("the replay's statements to end", || {
                waiting_on_a_lock(db) == 0
            });
            if let Some(claim) = summary_of_if_any(output) {
                assert_claim_holds(db, &[&stopped.input], &claim);
            }
            let output = the_pool_is_clean_and_a_rerun_finishes(bouncer, db, stopped, "3");
            let said = stderr_of(&output);
            assert!(said.contains("interrupted by SIGTERM"), "{said}");
            assert_says(&said, says);
            output
        },
    )
}

/// The claim of a replay's JSON summary, when it printed one.
fn summary_of_if_any(output: &Output) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    json["committed_before"].as_str().map(str::to_string)
}

#[test]
fn a_replay_through_transaction_pooling_stopped_by_sigterm_is_cancelled_and_keeps_its_claim() {
    // A server connection to spare: the cancel goes through the pool.
    let stopped = replay_stopped_by_sigterm_through(
        "a_replay_through_transaction_pooling_stopped_by_sigterm_is_cancelled_and_keeps_its_claim",
        4,
        &["holding-the-guard"],
    );
    if let Some(output) = stopped {
        let said = stderr_of(&output);
        assert!(!said.contains("metricsctl exits now"), "{said}");
        assert!(
            summary_of_if_any(&output).is_some(),
            "{}",
            stdout_of(&output)
        );
    }
}

#[test]
fn a_replay_that_took_the_whole_pool_stopped_by_sigterm_leaves_and_the_server_ends_its_statements()
{
    // Every server connection is the replay's own, waiting: nothing is free to cancel from. The
    // protocol's cancel request would crash pgbouncer 1.18; leaving ends the statements.
    replay_stopped_by_sigterm_through(
        "a_replay_that_took_the_whole_pool_stopped_by_sigterm_leaves_and_the_server_ends_its_statements",
        3,
        &["no connection could be had"],
    );
}

#[test]
fn a_pooler_that_takes_no_more_clients_survives_a_stopped_replay() {
    // The observer cannot get in, so nothing can be cancelled; the protocol's cancel request,
    // which pgbouncer 1.18 forwards even then, would crash it (pgbouncer issue #801).
    in_a_migrated_pool(
        "a_pooler_that_takes_no_more_clients_survives_a_stopped_replay",
        Pool {
            max_clients: 3,
            ..Pool::new(PoolMode::Transaction, 3)
        },
        |bouncer, db| {
            let stopped = replay_stopped_behind_the_guard(
                (bouncer, db),
                (30_000, 24),
                &["--jobs", "3"],
                Signal::SIGINT,
            );
            let said = stderr_of(&stopped.output);
            assert_eq!(code(&stopped.output), 3, "{said}");
            assert!(said.contains("no connection could be had"), "{said}");
            // Gone from pgbouncer, gone from the server: the statements noticed within a second
            // or so.
            let gone = Instant::now();
            wait_until("the abandoned statements to end", || {
                waiting_on_a_lock(db) == 0
            });
            assert!(gone.elapsed() < Duration::from_secs(5));
            the_pool_is_clean_and_a_rerun_finishes(bouncer, db, stopped, "1");
        },
    );
}

#[test]
fn the_online_conversion_refuses_a_round_robin_transaction_pool_too() {
    // pgbouncer's server_round_robin hands each transaction the connection idle longest: a
    // probe that only expects the one idle shortest would take this pool for a session.
    in_a_pool(
        "the_online_conversion_refuses_a_round_robin_transaction_pool_too",
        Pool {
            round_robin: true,
            ..Pool::new(PoolMode::Transaction, 2)
        },
        |bouncer, db| {
            plain_table_with_events(db, 1_000);
            // Both server connections open and idle.
            let warm: Vec<_> = (0..2)
                .map(|_| {
                    std::process::Command::new(pg_tool("psql"))
                        .args(["-X", "-q", "-c", "SELECT pg_sleep(0.5)", "-d"])
                        .arg(bouncer.url(&db.name))
                        .spawn()
                        .unwrap()
                })
                .collect();
            for mut psql in warm {
                assert!(psql.wait().unwrap().success());
            }
            let before = schema_dump(db);
            let enable = metricsctl_through(bouncer, db, &["partitions", "enable"]);
            let said = stderr_of(&enable);
            assert_eq!(code(&enable), 3, "{said}");
            assert!(said.contains("transaction-pooling proxy"), "{said}");
            assert_eq!(schema_dump(db), before);
            assert_eq!(
                advisory_locks(db),
                0,
                "a lock was left on a pooled connection"
            );
        },
    );
}

#[test]
fn a_dry_run_needing_more_server_connections_than_the_pool_has_says_so_at_once() {
    // Each writer of a dry run keeps its transaction, and so a server connection, to the end:
    // four writers, two connections. pgbouncer would keep the last two waiting for two minutes.
    in_a_migrated_pool(
        "a_dry_run_needing_more_server_connections_than_the_pool_has_says_so_at_once",
        Pool::new(PoolMode::Transaction, 2),
        |bouncer, db| {
            let (_dir, events) = generated_events(5_000, 10, 4);
            let events = events.to_str().unwrap();
            let started = Instant::now();
            let dry_run = metricsctl_through(
                bouncer,
                db,
                &[
                    "replay",
                    "--dry-run",
                    "--jobs",
                    "4",
                    "--connect-timeout",
                    "3s",
                    events,
                ],
            );
            assert!(started.elapsed() < Duration::from_secs(20));
            let said = stderr_of(&dry_run);
            assert_eq!(code(&dry_run), 3, "{said}");
            assert!(
                said.contains("of 4 got no answer") && said.contains("default_pool_size"),
                "{said}"
            );
            assert!(!said.contains("committed"), "{said}");
            // Two writers fit.
            let fits =
                metricsctl_through(bouncer, db, &["replay", "--dry-run", "--jobs", "2", events]);
            assert_eq!(code(&fits), 0, "{}", stderr_of(&fits));
            assert_eq!(db.count("SELECT count(*) FROM processed_events"), 0);
        },
    );
}

#[test]
fn a_timeout_when_the_pool_has_nothing_free_to_cancel_from_is_still_unknown_and_says_why() {
    // One server connection, and the check's own statement waits on it behind a lock: nothing is
    // free to ask or cancel from. Its statement_timeout, a second past --timeout, ends it.
    in_a_migrated_pool(
        "a_timeout_when_the_pool_has_nothing_free_to_cancel_from_is_still_unknown_and_says_why",
        Pool::new(PoolMode::Transaction, 1),
        |bouncer, db| {
            let holder = hold_metrics_exclusively(db);
            let (output, started) = nagios_check_with_a_2s_timeout_through(bouncer, db);
            let (stdout, said) = (stdout_of(&output), stderr_of(&output));
            assert_eq!(code(&output), 3, "{stdout}{said}");
            assert!(started.elapsed() < Duration::from_secs(10));
            assert!(
                stdout.starts_with("METRICSCTL CHECKS UNKNOWN - timed out after 2s"),
                "{stdout}"
            );
            assert!(stdout.contains("no connection could be had"), "{stdout}");
            holder.release();
            assert_pool_clean(bouncer, db);
        },
    );
}
