//! A database shared by several roles (issue 18): objects another role planted in the tables'
//! schema change nothing metricsctl reads or runs, whoever runs it; helper tables it did not make
//! are ignored or refused; every sub-check a role may not run says which GRANT it needs.

use std::path::Path;

use predicates::str::contains;
use serde_json::Value;

use crate::on_both_layouts;
use crate::support::{
    Layout, TestDatabase, event_line, generate_events, roles, stderr_of, stdout_of, write_lines,
};

/// A database as a team has it: owned by the owner role, migrated and loaded by it, the
/// monitor's and the writer's grants given with `metricsctl grants --apply`, and 20 metrics lost
/// (their guard rows stay). With `hostile`, mallory planted everything in
/// tests/fixtures/hostile_objects.sql first. Every session's own search path puts public before
/// pg_catalog (`ALTER DATABASE ... SET search_path`): whatever metricsctl runs before it pins its
/// own path would find mallory's objects first.
fn team_database(layout: Layout, hostile: bool, events: &Path) -> TestDatabase {
    let roles = roles();
    let db = TestDatabase::owned_by(&roles.owner);
    db.client()
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET search_path = public, pg_catalog",
            db.name
        ))
        .unwrap();
    if hostile {
        db.plant_hostile_objects(&roles.mallory);
    }
    match layout {
        Layout::Plain => db
            .metricsctl_as(&roles.owner, &["migrate"])
            .assert()
            .code(0),
        Layout::Partitioned => db
            .metricsctl_as(&roles.owner, &["migrate", "--partitioned"])
            .assert()
            .code(0),
    };
    if layout == Layout::Partitioned {
        db.metricsctl_as(
            &roles.owner,
            &["partitions", "create", "--from", "2026-01", "--months", "2"],
        )
        .assert()
        .code(0);
    }
    db.metricsctl_as(&roles.owner, &["replay"])
        .arg(events)
        .assert()
        .code(0);
    db.client()
        .batch_execute(
            // Written as metricsctl writes its own SQL: mallory's operators are there already.
            "DELETE FROM metrics WHERE event_id OPERATOR(pg_catalog.=) ANY \
             (ARRAY(SELECT event_id FROM metrics ORDER BY event_id LIMIT 20))",
        )
        .unwrap();
    crate::support::scenarios::grant_the_monitor_and_the_writer(&db);
    db
}

/// What may differ between two runs over the same data: the clock, sizes, speeds.
fn without_volatile(value: &Value) -> Value {
    const VOLATILE: [&str; 17] = [
        "since",
        "current_time",
        "lag_seconds",
        "latency_seconds",
        "summary",
        "elapsed_seconds",
        "elapsed_ms",
        "events_per_second",
        "applied_on",
        "bytes",
        "estimated_rows",
        "buckets",
        "stale",
        "stale_silent_seconds",
        "last_complete_bucket_events",
        "average_per_bucket",
        "report",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !VOLATILE.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), without_volatile(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_volatile).collect()),
        other => other.clone(),
    }
}

/// Runs the same command on both databases as `role` and insists on the same outcome: the exit
/// code, and the JSON report but for what the clock changes.
fn same_outcome(clean: &TestDatabase, hostile: &TestDatabase, role: &str, args: &[&str]) {
    let run = |db: &TestDatabase| db.metricsctl_as(role, args).output().unwrap();
    let (expected, got) = (run(clean), run(hostile));
    let stderr = stderr_of(&got);
    assert!(
        !stderr.contains("planted object"),
        "{args:?} as {role} ran a planted object: {stderr}"
    );
    assert_eq!(
        got.status.code(),
        expected.status.code(),
        "{args:?} as {role}: {stderr}\nclean run: {}",
        stderr_of(&expected)
    );
    if args.contains(&"json") {
        let json = |output: &std::process::Output| -> Value {
            serde_json::from_slice(&output.stdout)
                .unwrap_or_else(|e| panic!("{args:?} as {role}: {e}: {}", stdout_of(output)))
        };
        assert_eq!(
            without_volatile(&json(&got)),
            without_volatile(&json(&expected)),
            "{args:?} as {role}"
        );
    }
}

fn planted_objects_change_nothing_any_command_reads_or_runs(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let (first, second, third) = (
        dir.path().join("first.jsonl"),
        dir.path().join("second.jsonl"),
        dir.path().join("third.jsonl"),
    );
    generate_events(&first, 600, 12, 7, "jsonl");
    generate_events(&second, 700, 12, 8, "jsonl");
    generate_events(&third, 800, 12, 9, "csv");
    let clean = team_database(layout, false, &first);
    let hostile = team_database(layout, true, &first);
    let roles = roles();
    every_read_is_the_same_on_both(&clean, &hostile, layout);
    every_write_is_the_same_on_both(
        &clean,
        &hostile,
        [
            first.to_str().unwrap(),
            second.to_str().unwrap(),
            third.to_str().unwrap(),
        ],
    );
    partition_maintenance_is_the_same_on_both(&clean, &hostile, layout);
    same_outcome(
        &clean,
        &hostile,
        &roles.monitor,
        &["check", "--format", "json"],
    );
    let lost = |db: &TestDatabase| db.count("SELECT pg_catalog.count(*) FROM metrics");
    assert_eq!(lost(&hostile), lost(&clean));
    a_stopped_runs_observer_runs_nothing_planted(&clean, &hostile);
}

/// Every check, report and status, in JSON and the monitoring formats, as the owner, the
/// superuser and the monitor: the same outcome on the clean database and the hostile one.
fn every_read_is_the_same_on_both(clean: &TestDatabase, hostile: &TestDatabase, layout: Layout) {
    let roles = roles();
    let mut reads: Vec<Vec<&str>> = vec![
        vec!["check", "--format", "json"],
        vec!["check", "--since", "3650d", "--format", "json"],
        vec![
            "check", "ordering", "--sensor", "sensor-3", "--format", "json",
        ],
        vec![
            "check",
            "duplicates",
            "--since",
            "3650d",
            "--format",
            "json",
        ],
        vec!["check", "--format", "nagios"],
        vec!["check", "--format", "prometheus"],
    ];
    // Each check's own command, from the one list of checks.
    for check in metricsctl::Check::iter() {
        if check == metricsctl::Check::Partitions && layout != Layout::Partitioned {
            continue;
        }
        let mut args = check.command().to_vec();
        args.extend(["--format", "json"]);
        reads.push(args);
    }
    if layout == Layout::Partitioned {
        reads.push(vec!["partitions", "list", "--exact", "--format", "json"]);
    }
    for role in [&roles.owner, "postgres", &roles.monitor] {
        for args in &reads {
            same_outcome(clean, hostile, role, args);
        }
    }
}

/// The writer's replays (of `second` and `third`; `first` is already stored), the owner's repair
/// and maintenance, the superuser's too: the same outcome on both.
fn every_write_is_the_same_on_both(
    clean: &TestDatabase,
    hostile: &TestDatabase,
    [first, second, third]: [&str; 3],
) {
    let roles = roles();
    // Writing: the writer's replays, the owner's repair and maintenance, the superuser's too.
    let writes: Vec<(&str, Vec<&str>)> = vec![
        (
            &roles.writer,
            vec!["replay", "--dry-run", "--format", "json", second],
        ),
        (
            &roles.writer,
            vec!["replay", "--jobs", "3", "--format", "json", second],
        ),
        (
            &roles.writer,
            vec!["replay", "--strict", "--format", "json", third],
        ),
        (
            &roles.owner,
            vec!["repair", "--dry-run", "--format", "json"],
        ),
        (
            &roles.owner,
            vec!["replay", "--repair", "--format", "json", first],
        ),
        ("postgres", vec!["repair", "--format", "json"]),
        (&roles.owner, vec!["migrate", "--format", "json"]),
        (&roles.owner, vec!["check", "--format", "json"]),
    ];
    for (role, args) in &writes {
        same_outcome(clean, hostile, role, args);
    }
}

/// Creating, dropping, detaching and attaching partitions, or converting a plain table: the same
/// outcome on both.
fn partition_maintenance_is_the_same_on_both(
    clean: &TestDatabase,
    hostile: &TestDatabase,
    layout: Layout,
) {
    let roles = roles();
    match layout {
        Layout::Partitioned => {
            for args in [
                vec![
                    "partitions",
                    "create",
                    "--from",
                    "2025-10",
                    "--months",
                    "5",
                    "--format",
                    "json",
                ],
                vec![
                    "partitions",
                    "drop",
                    "--older-than",
                    "10",
                    "--dry-run",
                    "--format",
                    "json",
                ],
                vec![
                    "partitions",
                    "drop",
                    "--older-than",
                    "12",
                    "--detach",
                    "--format",
                    "json",
                ],
                vec!["partitions", "attach", "2025-10", "--format", "json"],
            ] {
                same_outcome(clean, hostile, &roles.owner, &args);
            }
        }
        Layout::Plain => {
            same_outcome(
                clean,
                hostile,
                &roles.owner,
                &["partitions", "enable", "--format", "json"],
            );
        }
    }
}

/// A run stopped behind a lock on both: its observer, which asks what it waited for, names the
/// holder and runs nothing planted.
fn a_stopped_runs_observer_runs_nothing_planted(clean: &TestDatabase, hostile: &TestDatabase) {
    let roles = roles();
    // What runs when a run is stopped: the observer that asks what it waited for.
    for db in [clean, hostile] {
        let _holder = crate::support::LockHolder::table(
            db,
            "holding-metrics",
            "LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE",
        );
        let output = db
            .metricsctl_as(
                &roles.monitor,
                &["check", "--timeout", "1s", "--format", "nagios"],
            )
            .output()
            .unwrap();
        let (stdout, stderr) = (stdout_of(&output), stderr_of(&output));
        assert_eq!(output.status.code(), Some(3), "{stdout}{stderr}");
        assert!(stdout.contains("holding-metrics"), "{stdout}{stderr}");
        assert!(!stderr.contains("planted object"), "{stderr}");
    }
}

/// The reproduction: a view named like metricsctl's bookkeeping, listing every event as
/// retired, must not turn 20 lost metrics into none.
fn a_planted_retired_events_view_cannot_hide_lost_metrics(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    generate_events(&events, 300, 5, 3, "jsonl");
    let db = team_database(layout, false, &events);
    let roles = roles();
    db.client()
        .batch_execute(&format!(
            "GRANT CREATE ON SCHEMA public TO PUBLIC;
             SET ROLE \"{}\";
             CREATE VIEW public.metricsctl_retired_events WITH (security_invoker = true) AS
                 SELECT event_id, CAST('2020-01-01' AS date) AS month, now() AS retired_at
                 FROM public.processed_events;
             RESET ROLE;",
            roles.mallory
        ))
        .unwrap();
    for role in [&roles.owner, "postgres", &roles.monitor] {
        let output = db
            .metricsctl_as(role, &["check", "duplicates", "--format", "json"])
            .output()
            .unwrap();
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "as {role}: {stderr}");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["lost_metrics"], 20, "as {role}: {report}");
        assert_eq!(report["retired_events"], 0, "as {role}: {report}");
        assert!(
            stderr.contains("metricsctl_retired_events\" is a view owned by mallory_")
                && stderr.contains("ignores it"),
            "as {role}: {stderr}"
        );
    }
    // Repair does not take them for retired either, and retention will not write into it.
    let repair = db
        .metricsctl_as(&roles.owner, &["repair", "--dry-run", "--format", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&repair.stdout).unwrap();
    let lost = report["repairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["kind"] == "lost_metrics")
        .unwrap();
    assert_eq!(lost["changed"], 20, "{report}");
    if layout == Layout::Partitioned {
        db.metricsctl_as(&roles.owner, &["partitions", "drop", "--older-than", "1"])
            .assert()
            .code(3)
            .stderr(contains("nothing was changed"));
    }
}

on_both_layouts!(
    planted_objects_change_nothing_any_command_reads_or_runs,
    a_planted_retired_events_view_cannot_hide_lost_metrics,
);

#[test]
fn a_planted_history_table_is_neither_read_nor_written() {
    let roles = roles();
    let db = TestDatabase::owned_by(&roles.owner);
    db.client()
        .batch_execute(&format!(
            "GRANT CREATE ON SCHEMA public TO PUBLIC;
             SET ROLE \"{}\";
             CREATE TABLE public.refinery_schema_history (version int4 PRIMARY KEY,
                 name varchar(255), applied_on varchar(255), checksum varchar(255));
             GRANT SELECT, INSERT, UPDATE ON public.refinery_schema_history TO PUBLIC;
             RESET ROLE;",
            roles.mallory
        ))
        .unwrap();
    for args in [&["migrate"][..], &["migrate", "status"]] {
        db.metricsctl_as(&roles.owner, args)
            .assert()
            .code(3)
            .stderr(contains(
                "refinery_schema_history\" is a table owned by mallory_",
            ));
    }
    assert!(!db.relation_exists("metrics"), "nothing was migrated");
}

#[test]
fn migrate_does_not_adopt_a_table_another_role_made() {
    let roles = roles();
    let db = TestDatabase::owned_by(&roles.owner);
    db.client()
        .batch_execute(&format!(
            "GRANT CREATE ON SCHEMA public TO PUBLIC;
             SET ROLE \"{}\";
             CREATE TABLE public.processed_events (event_id varchar(255) PRIMARY KEY,
                 sensor_id varchar(255) NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(),
                 kafka_partition integer, kafka_offset bigint);
             RESET ROLE;",
            roles.mallory
        ))
        .unwrap();
    db.metricsctl_as(&roles.owner, &["migrate"])
        .assert()
        .code(3)
        .stderr(contains("is owned by mallory_"))
        .stderr(contains("does not adopt"));
    assert!(!db.relation_exists("metrics"));
}

#[test]
fn migrate_with_planted_functions_builds_defaults_on_postgresqls_own() {
    let roles = roles();
    let db = TestDatabase::owned_by(&roles.owner);
    db.plant_hostile_objects(&roles.mallory);
    db.metricsctl_as(&roles.owner, &["migrate"])
        .assert()
        .code(0)
        .stderr(contains("may create objects in schema public"))
        .stderr(contains("REVOKE CREATE ON SCHEMA \"public\" FROM PUBLIC;"));
    // The defaults call pg_catalog.now(): an insert by the consumer runs no planted code.
    let foreign: i64 = db.scalar(
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_depend d
         JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.refobjid
         WHERE d.classid OPERATOR(pg_catalog.=) CAST(CAST('pg_catalog.pg_attrdef' AS regclass) AS oid)
           AND p.pronamespace OPERATOR(pg_catalog.<>) CAST(CAST('pg_catalog' AS regnamespace) AS oid)",
    );
    assert_eq!(foreign, 0);
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    write_lines(
        &events,
        &[event_line("e1", "s1", "2026-01-01T00:00:00Z", 1.0)],
    );
    db.metricsctl_as(&roles.owner, &["replay"])
        .arg(&events)
        .assert()
        .code(0);
    // With the defaults PostgreSQL's own, a later planted function changes nothing either:
    // the monitor's check of a database where mallory planted after the migration.
    db.metricsctl_as(
        &roles.owner,
        &["grants", "--monitor", &roles.monitor, "--apply"],
    )
    .assert()
    .code(0);
    db.metricsctl_as(&roles.monitor, &["check"])
        .assert()
        .code(0);
}

/// A table another role made under a month's partition name never becomes a partition: its
/// owner could read and change that month and run triggers as every writer.
#[test]
fn another_roles_table_is_never_attached_as_a_partition() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    generate_events(&events, 50, 2, 5, "jsonl");
    let db = team_database(Layout::Partitioned, false, &events);
    let roles = roles();
    let month: String = db.scalar("SELECT to_char(now() + interval '8 months', 'YYYY_MM')");
    let dashed = month.replace('_', "-");
    db.client()
        .batch_execute(&format!(
            "GRANT CREATE ON SCHEMA public TO PUBLIC;
             SET ROLE \"{}\";
             CREATE TABLE public.metrics_{month} (id bigint NOT NULL, sensor_id varchar(255) NOT NULL,
                 event_id varchar(255) NOT NULL, timestamp timestamptz NOT NULL,
                 value double precision NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
             RESET ROLE;",
            roles.mallory
        ))
        .unwrap();
    for role in [&roles.owner, "postgres"] {
        db.metricsctl_as(role, &["partitions", "attach", &dashed])
            .assert()
            .code(3)
            .stderr(contains("owned by mallory_"))
            .stderr(contains("will not make another role's table a partition"));
        db.metricsctl_as(
            role,
            &[
                "partitions",
                "create",
                "--from",
                &dashed,
                "--months",
                "0",
                "--no-fill",
            ],
        )
        .assert()
        .code(3)
        .stderr(contains("it belongs to mallory_"));
    }
    let attached: i64 = db.scalar(&format!(
        "SELECT count(*) FROM pg_inherits WHERE inhrelid = 'public.metrics_{month}'::regclass"
    ));
    assert_eq!(attached, 0);
}

/// Names planted before the first migrate would give the guide's keys, indexes and sequence other
/// names (processed_events_pkey1) or none at all (CREATE INDEX IF NOT EXISTS skips a name that is
/// taken): migrate rolls back and says which.
#[test]
fn migrate_refuses_when_the_guides_names_are_taken() {
    let roles = roles();
    for planted in [
        "CREATE TABLE public.processed_events_pkey (x int)",
        "CREATE TABLE public.idx_metrics_timestamp (x int)",
        "CREATE SEQUENCE public.metrics_id_seq",
    ] {
        let db = TestDatabase::owned_by(&roles.owner);
        db.client()
            .batch_execute(&format!(
                "GRANT CREATE ON SCHEMA public TO PUBLIC; SET ROLE \"{}\"; {planted}; RESET ROLE;",
                roles.mallory
            ))
            .unwrap();
        for args in [&["migrate"][..], &["migrate", "--partitioned"]] {
            db.metricsctl_as(&roles.owner, args)
                .assert()
                .code(3)
                .stderr(contains("is taken by an object owned by mallory_"))
                .stderr(contains("nothing was changed"));
            assert!(!db.relation_exists("public.metrics"), "{planted}");
        }
    }
}
