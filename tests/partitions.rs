//! Monthly partitions: `migrate --partitioned`, `partitions enable|create|list|drop`,
//! `check partitions`, time zones, DEFAULT rows, gaps, concurrency, and pg_partman's ranges.

use std::collections::BTreeSet;
use std::process::Stdio;

use chrono::{Datelike, Months, NaiveDate};
use predicates::str::contains;
use serde_json::Value;

use metricsctl::db::sandbox::{Sandbox, SandboxOptions};

use crate::support::scenarios::texts_of;
use crate::support::{
    LockHolder, TestDatabase, assert_exactly_once, generate_events, json_of, metricsctl_process,
    schema_dump, spawn_replay, stderr_of, wait_until_writing,
};

/// The current month in UTC by the test server's clock, as (year, month).
fn current_month(db: &TestDatabase) -> NaiveDate {
    db.scalar("SELECT CAST(date_trunc('month', now() AT TIME ZONE 'UTC') AS date)")
}

fn month_name(first_day: NaiveDate) -> String {
    format!("metrics_{:04}_{:02}", first_day.year(), first_day.month())
}

/// Each attached partition's bound as PostgreSQL prints it in a UTC session.
fn bounds(db: &TestDatabase) -> Vec<(String, String)> {
    let mut client = db.client();
    let mut tx = client.transaction().unwrap();
    tx.batch_execute("SET LOCAL TimeZone = 'UTC'").unwrap();
    let rows = tx
        .query(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'metrics'::regclass \
             ORDER BY 1",
            &[],
        )
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn migrate_partitioned(db: &TestDatabase) {
    db.metricsctl(&["migrate", "--partitioned"])
        .assert()
        .code(0);
}

/// Every constraint of a table: name, kind and definition.
fn constraints(db: &TestDatabase, table: &str) -> BTreeSet<(String, String, String)> {
    db.client()
        .query(
            "SELECT CAST(conname AS text), CAST(contype AS text), pg_get_constraintdef(oid)
             FROM pg_constraint WHERE conrelid = to_regclass($1)",
            &[&table],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// `r` for a plain metrics, `p` for a partitioned one.
fn relkind(db: &TestDatabase) -> String {
    db.scalar("SELECT CAST(relkind AS text) FROM pg_class WHERE relname = 'metrics'")
}

fn partition_names(db: &TestDatabase) -> BTreeSet<String> {
    bounds(db).into_iter().map(|(name, _)| name).collect()
}

#[test]
fn migrate_partitioned_builds_the_guides_partitioned_schema() {
    let ours = TestDatabase::new();
    ours.metricsctl(&["migrate", "--partitioned"])
        .assert()
        .code(0)
        .stderr(contains("partitioned by month"));
    ours.metricsctl(&["partitions", "create", "--from", "2024-01", "--months", "1"])
        .assert()
        .code(0);

    // The guide's own SQL: its partitioned metrics (with 2024-01 and 2024-02), then its init.sql,
    // which adds processed_events and, metrics existing, the three indexes to the partitioned table.
    let seed = TestDatabase::new();
    let mut client = seed.client();
    client.batch_execute("SET TimeZone = 'UTC'").unwrap();
    client
        .batch_execute(include_str!("fixtures/seed_partitioned.sql"))
        .unwrap();
    client
        .batch_execute(include_str!("fixtures/seed_init.sql"))
        .unwrap();
    // ... plus what `migrate --partitioned` adds on purpose: DEFAULT, and every month from 2024-03
    // through two months ahead (the gap between them filled).
    client
        .batch_execute("CREATE TABLE metrics_default PARTITION OF metrics DEFAULT")
        .unwrap();
    let last = current_month(&ours) + Months::new(2);
    let mut month = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
    while month <= last {
        let next = month + Months::new(1);
        client
            .batch_execute(&format!(
                "CREATE TABLE {} PARTITION OF metrics FOR VALUES FROM ('{month}') TO ('{next}')",
                month_name(month)
            ))
            .unwrap();
        month = next;
    }
    let ours_dump = schema_dump(&ours);
    assert!(
        ours_dump.contains("PARTITION BY RANGE (\"timestamp\")"),
        "{ours_dump}"
    );
    assert!(
        ours_dump.contains("metrics_event_id_timestamp_key"),
        "{ours_dump}"
    );
    assert_eq!(ours_dump, schema_dump(&seed));
}

#[test]
fn plain_migrate_on_a_partitioned_database_works_and_status_agrees() {
    let db = TestDatabase::new();
    migrate_partitioned(&db);
    db.metricsctl(&["migrate"])
        .assert()
        .code(0)
        .stderr(contains("up to date"));
    let status = json_of(&db, &["migrate", "status"], 0);
    for migration in status["migrations"].as_array().unwrap() {
        assert_eq!(migration["state"], "applied");
    }
    let report = json_of(&db, &["migrate"], 0);
    assert_eq!(report["layout"], "partitioned");
    // A second --partitioned run finds everything in place.
    migrate_partitioned(&db);
    let current = current_month(&db);
    let expected: BTreeSet<String> = (0..=2)
        .map(|i| month_name(current + Months::new(i)))
        .chain(["metrics_default".to_string()])
        .collect();
    assert_eq!(partition_names(&db), expected);
}

#[test]
fn partitions_enable_converts_in_place_keeping_rows_ids_and_the_sequence() {
    converts_in_place(&[]);
}

#[test]
fn partitions_enable_offline_converts_in_one_transaction_making_only_months_with_rows() {
    converts_in_place(&["--offline"]);
}

/// The months (`YYYY-MM`) a conversion run with `flags` makes: the ones holding rows, and online
/// also the current month and the two after it, as the server's clock says.
fn months_made(db: &TestDatabase, flags: &[&str], holding_rows: &[&str]) -> Vec<String> {
    let mut months: Vec<String> = holding_rows.iter().map(|m| m.to_string()).collect();
    if !flags.contains(&"--offline") {
        for ahead in 0..=2 {
            months.push(db.scalar(&format!(
                "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') \
                 + interval '{ahead} month', 'YYYY-MM')"
            )));
        }
    }
    months.sort();
    months.dedup();
    months
}

fn converts_in_place(flags: &[&str]) {
    let db = TestDatabase::new();
    db.migrate();
    let mut client = db.client();
    rows_in_three_months_with_a_hole_in_the_ids(&mut client);
    let before = metrics_rows(&mut client);
    let sequence_before: i64 = db.scalar("SELECT last_value FROM metrics_id_seq");

    // The dry run shows the plan and changes nothing.
    let expected_months = months_made(&db, flags, &["2019-03", "2026-01", "2026-02"]);
    the_dry_run_shows_the_plan_and_changes_nothing(&db, flags, &expected_months);

    db.metricsctl(&[&["partitions", "enable"], flags].concat())
        .assert()
        .code(0);
    assert_eq!(relkind(&db), "p");
    every_row_id_and_the_sequence_are_kept(&db, &mut client, &before, sequence_before);
    each_month_has_its_partition_and_its_rows(&db, &expected_months);
    the_indexes_and_constraints_are_the_guides(&db);
    db.metricsctl(&["check", "duplicates"]).assert().code(0);
    // On an already-partitioned table it says so and exits 0.
    db.metricsctl(&["partitions", "enable"])
        .assert()
        .code(0)
        .stderr(contains("already partitioned"));
}

/// 299 events in a plain table: 20 in March 2019, 130 in the last seconds of January 2026 (UTC)
/// and the rest in February; the 300th deleted, leaving a hole in the ids and the sequence
/// moved on.
fn rows_in_three_months_with_a_hole_in_the_ids(client: &mut postgres::Client) {
    client
        .batch_execute(
            "INSERT INTO processed_events (event_id, sensor_id)
               SELECT 'e' || i, 's' || (i % 3) FROM generate_series(1, 300) i;
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
               SELECT 's' || (i % 3), 'e' || i,
                      CASE WHEN i <= 20 THEN timestamptz '2019-03-15T12:00:00Z' + make_interval(secs => i)
                           -- the last seconds of January, UTC
                           WHEN i <= 150 THEN timestamptz '2026-01-31T23:57:00Z' + make_interval(secs => i - 21)
                           ELSE timestamptz '2026-02-01T00:00:00Z' + make_interval(secs => i) END,
                      i
               FROM generate_series(1, 300) i;
             -- a deleted row leaves a hole in the ids, and moves the sequence on
             DELETE FROM metrics WHERE event_id = 'e300';
             DELETE FROM processed_events WHERE event_id = 'e300';",
        )
        .unwrap();
}

/// Every metric's id, event id and value, by id.
fn metrics_rows(client: &mut postgres::Client) -> Vec<(i64, String, f64)> {
    client
        .query("SELECT id, event_id, value FROM metrics ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// `partitions enable --dry-run` (with `flags`) plans 299 rows into `expected_months`, and the
/// table stays plain.
fn the_dry_run_shows_the_plan_and_changes_nothing(
    db: &TestDatabase,
    flags: &[&str],
    expected_months: &[String],
) {
    let plan = json_of(
        db,
        &[&["partitions", "enable", "--dry-run"], flags].concat(),
        0,
    );
    assert_eq!(plan["plan"]["rows"], 299);
    let months = texts_of(&plan["plan"]["months"], "month");
    assert_eq!(months, expected_months);
    assert_eq!(relkind(db), "r");
}

/// After the conversion every row keeps its id, and the sequence goes on where it was.
fn every_row_id_and_the_sequence_are_kept(
    db: &TestDatabase,
    client: &mut postgres::Client,
    before: &[(i64, String, f64)],
    sequence_before: i64,
) {
    let after = metrics_rows(client);
    assert_eq!(after, before, "every row and id kept");
    assert_eq!(
        db.scalar::<i64>("SELECT last_value FROM metrics_id_seq"),
        sequence_before
    );
    let next_id: i64 = client
        .query_one(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value)
             VALUES ('s', 'new', '2026-02-02T00:00:00Z', 1) RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        next_id,
        sequence_before + 1,
        "the sequence goes on where it was"
    );
    client
        .execute("DELETE FROM metrics WHERE event_id = 'new'", &[])
        .unwrap();
}

/// A partition for each of `expected_months` and the default; January's last seconds in
/// January, nothing in the default.
fn each_month_has_its_partition_and_its_rows(db: &TestDatabase, expected_months: &[String]) {
    let mut expected_partitions: BTreeSet<String> = expected_months
        .iter()
        .map(|m| format!("metrics_{}", m.replace('-', "_")))
        .collect();
    expected_partitions.insert("metrics_default".to_string());
    assert_eq!(partition_names(db), expected_partitions);
    let in_january: i64 = db.count("SELECT count(*) FROM metrics_2026_01");
    assert_eq!(
        in_january, 130,
        "the last seconds of January stay in January"
    );
    assert_eq!(db.count("SELECT count(*) FROM metrics_default"), 0);
}

/// The seed's indexes and keys are there with the seed's names, and every constraint of metrics
/// and a partition is the guide's.
fn the_indexes_and_constraints_are_the_guides(db: &TestDatabase) {
    // The seed's indexes and keys are there, with the seed's names.
    for index in [
        "metrics_pkey",
        "metrics_event_id_timestamp_key",
        "idx_metrics_sensor_id",
        "idx_metrics_timestamp",
        "idx_metrics_sensor_timestamp",
    ] {
        assert!(db.relation_exists(index), "{index}");
    }
    // ... and every constraint is the guide's, names included (PostgreSQL 18 names the NOT NULL
    // constraints too, and the set-aside plain table must not have kept those names taken).
    let guide = TestDatabase::new();
    guide
        .client()
        .batch_execute(&format!(
            "SET TimeZone = 'UTC'; {} {}
             CREATE TABLE metrics_2026_01 PARTITION OF metrics
                 FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');",
            include_str!("fixtures/seed_partitioned.sql"),
            include_str!("fixtures/seed_init.sql")
        ))
        .unwrap();
    for table in ["metrics", "metrics_2026_01"] {
        assert_eq!(
            constraints(db, table),
            constraints(&guide, table),
            "the constraints of {table}"
        );
    }
}

#[test]
fn migrate_partitioned_does_not_convert_a_table_that_holds_rows() {
    let db = TestDatabase::new();
    db.migrate();
    db.client()
        .batch_execute("INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES ('s', 'e', now(), 1)")
        .unwrap();
    db.metricsctl(&["migrate", "--partitioned"])
        .assert()
        .code(3)
        .stderr(contains("partitions enable"));
    assert_eq!(relkind(&db), "r");
}

#[test]
fn rows_waiting_in_default_move_into_their_new_partition() {
    let db = TestDatabase::new();
    migrate_partitioned(&db);
    let mut client = db.client();
    client
        .batch_execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value)
               SELECT 's', 'd' || i, timestamptz '2025-06-10T00:00:00Z' + make_interval(days => i), i
               FROM generate_series(1, 40) i;",
        )
        .unwrap();
    // June and July 2025 rows wait in DEFAULT; creating June's partition over them would fail
    // without moving them first.
    assert_eq!(db.count("SELECT count(*) FROM metrics_default"), 40);
    json_of(&db, &["check", "partitions"], 1);
    let ids_before: Vec<i64> = client
        .query("SELECT id FROM metrics ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let report = json_of(
        &db,
        &["partitions", "create", "--from", "2025-06", "--months", "0"],
        0,
    );
    assert_eq!(report["months"][0]["partition"], "metrics_2025_06");
    assert_eq!(report["months"][0]["moved_from_default"], 20);
    // July, and every month up to the current one, is filled as a gap: July's rows move too.
    let july = report["months"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["month"] == "2025-07")
        .unwrap();
    assert_eq!(july["action"], "created (gap)");
    assert_eq!(july["moved_from_default"], 20);
    assert_eq!(db.count("SELECT count(*) FROM metrics_2025_06"), 20);
    assert_eq!(db.count("SELECT count(*) FROM metrics_2025_07"), 20);
    assert_eq!(db.count("SELECT count(*) FROM metrics_default"), 0);
    let ids_after: Vec<i64> = client
        .query("SELECT id FROM metrics ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids_after, ids_before);
    json_of(&db, &["check", "partitions"], 0);
}

#[test]
fn gaps_are_filled_and_a_rerun_changes_nothing() {
    let db = TestDatabase::new();
    migrate_partitioned(&db);
    let current = current_month(&db);
    let far = current - Months::new(5);
    let report = json_of(
        &db,
        &[
            "partitions",
            "create",
            "--from",
            &far.format("%Y-%m").to_string(),
            "--months",
            "0",
        ],
        0,
    );
    let actions: Vec<(String, String)> = report["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["month"].as_str().unwrap().to_string(),
                m["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The month asked for, then the four months between it and the existing ones.
    assert_eq!(actions.len(), 5, "{actions:?}");
    assert_eq!(actions[0].1, "created");
    assert!(
        actions[1..].iter().all(|(_, a)| a == "created (gap)"),
        "{actions:?}"
    );
    let list = json_of(&db, &["partitions", "list"], 0);
    assert_eq!(list["gaps"].as_array().unwrap().len(), 0);

    let names_before = partition_names(&db);
    let rerun = json_of(
        &db,
        &[
            "partitions",
            "create",
            "--from",
            &far.format("%Y-%m").to_string(),
            "--months",
            "7",
        ],
        0,
    );
    assert!(
        rerun["months"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["action"] == "present")
    );
    assert_eq!(partition_names(&db), names_before);
}

#[test]
fn partitions_commands_on_a_plain_table_say_to_enable() {
    let db = TestDatabase::new();
    db.migrate();
    for args in [
        &["partitions", "create", "--months", "2"][..],
        &["partitions", "list"],
        &["partitions", "drop", "--older-than", "3"],
        &["check", "partitions"],
    ] {
        db.metricsctl(args)
            .assert()
            .code(3)
            .stderr(contains("partitions enable"));
    }
    // check all leaves the partitions check out on a plain database.
    let all = json_of(&db, &["check"], 0);
    assert!(
        all["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["check"] != "partitions")
    );
}

/// A cluster whose server TimeZone is `zone`; our sessions also ask for `session_zone`.
fn cluster_in(zone: &str) -> Sandbox {
    Sandbox::start(&SandboxOptions {
        settings: vec![("timezone".to_string(), format!("'{zone}'"))],
        ..SandboxOptions::default()
    })
    .expect("starting PostgreSQL")
}

#[test]
fn bounds_are_utc_months_whatever_the_server_or_session_time_zone() {
    for (server_zone, session_zone) in [
        ("America/Los_Angeles", "Asia/Kolkata"),
        ("Asia/Kolkata", "America/Los_Angeles"),
    ] {
        let server = cluster_in(server_zone);
        let db = TestDatabase::on_server(&server.url("postgres"));
        let url = format!(
            "{}?options=-c%20TimeZone%3D{}",
            db.url,
            session_zone.replace('/', "%2F")
        );
        let run = |args: &[&str]| {
            crate::support::metricsctl()
                .args(args)
                .args(["--database-url", &url])
                .assert()
                .code(0);
        };
        run(&["migrate", "--partitioned"]);
        run(&["partitions", "create", "--from", "2026-03", "--months", "1"]);
        let march = bounds(&db)
            .into_iter()
            .find(|(name, _)| name == "metrics_2026_03")
            .unwrap()
            .1;
        assert_eq!(
            march, "FOR VALUES FROM ('2026-03-01 00:00:00+00') TO ('2026-04-01 00:00:00+00')",
            "server {server_zone}, session {session_zone}"
        );
        // Half an hour into March UTC is still February in Los Angeles: it must land in March.
        let mut client = crate::support::connect_url(&url);
        client
            .batch_execute(
                "INSERT INTO metrics (sensor_id, event_id, timestamp, value)
                 VALUES ('s', 'edge', '2026-03-01T00:30:00Z', 1),
                        ('s', 'eve', '2026-02-28T23:30:00Z', 1)",
            )
            .unwrap();
        assert_eq!(
            db.count("SELECT count(*) FROM metrics_2026_03 WHERE event_id = 'edge'"),
            1
        );
        assert_eq!(
            db.count("SELECT count(*) FROM metrics_default WHERE event_id = 'eve'"),
            1
        );
        let list = crate::support::metricsctl()
            .args([
                "partitions",
                "list",
                "--format",
                "json",
                "--database-url",
                &url,
            ])
            .output()
            .unwrap();
        let list: Value = serde_json::from_slice(&list.stdout).unwrap();
        let months: Vec<&str> = list["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["bound"]["month"].as_str())
            .collect();
        assert!(
            months.contains(&"2026-03") && months.contains(&"2026-04"),
            "{months:?}"
        );
        drop(db);
    }
}

#[test]
fn two_creates_at_once_both_succeed_and_create_each_partition_once() {
    let db = TestDatabase::new();
    migrate_partitioned(&db);
    let runs: Vec<_> = (0..3)
        .map(|_| {
            metricsctl_process()
                .args([
                    "partitions",
                    "create",
                    "--from",
                    "2025-01",
                    "--months",
                    "30",
                ])
                .args(["--lock-timeout", "60s", "--database-url", &db.url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let output = run.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    }
    let names = partition_names(&db);
    assert!(
        names.contains("metrics_2025_01") && names.contains("metrics_2027_07"),
        "{names:?}"
    );
    json_of(&db, &["check", "partitions"], 0);
}

#[test]
fn a_replay_running_while_partitions_are_created_loses_nothing() {
    let db = TestDatabase::new();
    migrate_partitioned(&db);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    // 120,000 events from 2026-01-01 on: January, February... all waiting for their partitions.
    generate_events(&input, 120_000, 20, 31, "jsonl");
    let replay = spawn_replay(&db, &["--batch-size", "1000"], &[&input]);
    wait_until_writing(&db);
    for _ in 0..3 {
        let output = metricsctl_process()
            .args(["partitions", "create", "--from", "2026-01", "--months", "1"])
            .args(["--lock-timeout", "60s", "--database-url", &db.url])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    }
    let output = replay.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_exactly_once(&db, 120_000);
    let in_default =
        db.count("SELECT count(*) FROM metrics_default WHERE timestamp < '2026-03-01T00:00:00Z'");
    assert_eq!(
        in_default, 0,
        "January and February rows all reached their partitions"
    );
}

#[test]
fn partitions_create_gives_up_after_its_lock_timeout() {
    let db = TestDatabase::new();
    migrate_partitioned(&db);
    let holder = LockHolder::table(
        &db,
        "long-report",
        "LOCK TABLE metrics IN ACCESS SHARE MODE",
    );
    db.metricsctl(&[
        "partitions",
        "create",
        "--from",
        "2025-01",
        "--months",
        "0",
        "--lock-timeout",
        "1s",
    ])
    .assert()
    .code(3)
    .stderr(contains("could not lock metrics within 1s"));
    holder.release();
    assert!(
        !partition_names(&db).contains("metrics_2025_01"),
        "nothing was created"
    );
}

#[test]
fn retention_drops_or_detaches_old_months_and_never_default_or_current() {
    for (detach, forget) in [(false, false), (true, false), (false, true)] {
        let db = TestDatabase::new();
        migrate_partitioned(&db);
        let current = current_month(&db);
        a_month_of_events_each_for_eight_months_and_one_in_default(&db, current);
        let expected: Vec<String> = [8, 7]
            .iter()
            .map(|i| month_name(current - Months::new(*i)))
            .collect();
        a_dry_run_of_retention_plans_the_old_months_and_changes_nothing(&db, &expected);
        retention_drops_the_old_months_as_told(&db, detach, forget);
        only_the_old_months_are_gone(&db, current, &expected, detach);
        // Kept guard rows belong to retired events, forgotten ones are gone: nothing looks lost.
        let duplicates = json_of(&db, &["check", "duplicates"], 0);
        assert_eq!(duplicates["lost_metrics"], 0, "{duplicates}");
        assert_eq!(
            duplicates["retired_events"],
            if forget { 0 } else { 2 },
            "{duplicates}"
        );
        // --older-than 0 would include the current month: refused.
        db.metricsctl(&["partitions", "drop", "--older-than", "0"])
            .assert()
            .code(3);
    }
}

/// Partitions from 8 months ago to now, and one event per month in them, with guard rows, plus
/// one in DEFAULT.
fn a_month_of_events_each_for_eight_months_and_one_in_default(
    db: &TestDatabase,
    current: NaiveDate,
) {
    let from = (current - Months::new(8)).format("%Y-%m").to_string();
    db.metricsctl(&["partitions", "create", "--from", &from, "--months", "8"])
        .assert()
        .code(0);
    let mut client = db.client();
    client
        .batch_execute(
            "WITH months AS (
               SELECT i, date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                         - make_interval(months => i) + interval '1 day' AS ts
               FROM generate_series(0, 8) i),
             guard AS (INSERT INTO processed_events (event_id, sensor_id) SELECT 'm' || i, 's' FROM months)
             INSERT INTO metrics (sensor_id, event_id, timestamp, value) SELECT 's', 'm' || i, ts, i FROM months;
             INSERT INTO processed_events (event_id, sensor_id) VALUES ('ancient', 's');
             INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES ('s', 'ancient', '2001-01-01T00:00:00Z', 0);",
        )
        .unwrap();
}

/// `partitions drop --older-than 6 --dry-run` plans the `expected` partitions and changes
/// nothing.
fn a_dry_run_of_retention_plans_the_old_months_and_changes_nothing(
    db: &TestDatabase,
    expected: &[String],
) {
    let names_before = partition_names(db);
    let dry = json_of(
        db,
        &["partitions", "drop", "--older-than", "6", "--dry-run"],
        0,
    );
    let planned = texts_of(&dry["partitions"], "partition");
    assert_eq!(planned, expected);
    assert_eq!(
        partition_names(db),
        names_before,
        "a dry run changes nothing"
    );
}

/// `partitions drop --older-than 6` (`--detach`, `--forget-guard-rows` as told) reports its two
/// partitions, each with its event retired or its guard row deleted, and keeps the guard rows
/// unless told to forget them.
fn retention_drops_the_old_months_as_told(db: &TestDatabase, detach: bool, forget: bool) {
    let mut args = vec!["partitions", "drop", "--older-than", "6"];
    if detach {
        args.push("--detach");
    }
    if forget {
        args.push("--forget-guard-rows");
    }
    let report = json_of(db, &args, 0);
    assert_eq!(report["partitions"].as_array().unwrap().len(), 2);
    let (kept, deleted) = if forget {
        (None, Some(1))
    } else {
        (Some(1), None)
    };
    for partition in report["partitions"].as_array().unwrap() {
        assert_eq!(partition["events_retired"].as_u64(), kept, "{report}");
        assert_eq!(
            partition["guard_rows_deleted"].as_u64(),
            deleted,
            "{report}"
        );
    }
    assert_eq!(
        db.count("SELECT count(*) FROM processed_events"),
        if forget { 8 } else { 10 },
        "guard rows are kept unless --forget-guard-rows"
    );
}

/// The `expected` partitions are detached (kept as tables only with `detach`); DEFAULT and the
/// current month stay, with the seven retained months' rows and DEFAULT's.
fn only_the_old_months_are_gone(
    db: &TestDatabase,
    current: NaiveDate,
    expected: &[String],
    detach: bool,
) {
    let names_after = partition_names(db);
    for gone in expected {
        assert!(!names_after.contains(gone), "{gone} still attached");
        assert_eq!(
            db.relation_exists(gone),
            detach,
            "{gone} kept as a table only with --detach"
        );
    }
    assert!(names_after.contains("metrics_default"));
    assert!(names_after.contains(&month_name(current)));
    assert_eq!(
        db.count("SELECT count(*) FROM metrics"),
        8,
        "7 retained months + DEFAULT's"
    );
}

#[test]
fn check_partitions_grades_every_state() {
    let db = TestDatabase::new();
    migrate_partitioned(&db);
    let current = current_month(&db);
    let ok = json_of(&db, &["check", "partitions"], 0);
    assert_eq!(ok["months_ahead"], 2);
    assert_eq!(ok["current_month_partition"], month_name(current));

    // Fewer future months than --ahead: WARNING.
    json_of(&db, &["check", "partitions", "--ahead", "3"], 1);
    // Rows in DEFAULT: WARNING.
    let mut client = db.client();
    client
        .execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES ('s', 'x', '2001-01-01T00:00:00Z', 1)",
            &[],
        )
        .unwrap();
    let warning = json_of(&db, &["check", "partitions"], 1);
    assert_eq!(warning["default_rows"], 1);
    client
        .execute("DELETE FROM metrics WHERE event_id = 'x'", &[])
        .unwrap();
    // A gap: WARNING.
    client
        .batch_execute(&format!(
            "DROP TABLE {}",
            month_name(current + Months::new(1))
        ))
        .unwrap();
    let gap = json_of(&db, &["check", "partitions"], 1);
    assert_eq!(gap["gaps"].as_array().unwrap().len(), 1);
    // No partition for the current month: CRITICAL, also in check all and for monitoring.
    client
        .batch_execute(&format!("DROP TABLE {}", month_name(current)))
        .unwrap();
    json_of(&db, &["check", "partitions"], 2);
    let all = json_of(&db, &["check"], 2);
    assert!(
        all["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "partitions" && c["status"] == "CRITICAL")
    );
    db.metricsctl(&["check", "partitions", "--format", "nagios"])
        .assert()
        .code(2)
        .stdout(contains(
            "METRICSCTL PARTITIONS CRITICAL - no partition for the current month",
        ));
}

#[test]
fn list_shows_bounds_rows_sizes_and_flags() {
    let db = TestDatabase::new();
    migrate_partitioned(&db);
    db.client()
        .batch_execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value)
             SELECT 's', 'l' || i, now(), i FROM generate_series(1, 25) i;
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
             VALUES ('s', 'old', '2001-01-01T00:00:00Z', 1);",
        )
        .unwrap();
    let list = json_of(&db, &["partitions", "list", "--exact"], 0);
    let current = month_name(current_month(&db));
    let partitions = list["partitions"].as_array().unwrap();
    let this_month = partitions.iter().find(|p| p["name"] == current).unwrap();
    assert_eq!(this_month["exact_rows"], 25);
    assert!(this_month["bytes"].as_i64().unwrap() > 0);
    assert_eq!(list["default_rows"], 1);
    assert_eq!(list["months_ahead"], 2);
    db.metricsctl(&["partitions", "list"])
        .assert()
        .code(0)
        .stdout(contains("DEFAULT holds 1 row"))
        .stdout(contains(&current));
}

#[test]
fn duplicates_finds_one_event_stored_in_two_partitions() {
    let db = TestDatabase::new();
    migrate_partitioned(&db);
    db.metricsctl(&["partitions", "create", "--from", "2026-01", "--months", "1"])
        .assert()
        .code(0);
    // Uniqueness is per (event_id, timestamp): the same event can sit in two months.
    db.client()
        .batch_execute(
            "INSERT INTO processed_events (event_id, sensor_id) VALUES ('twice', 's');
             INSERT INTO metrics (sensor_id, event_id, timestamp, value)
             VALUES ('s', 'twice', '2026-01-15T00:00:00Z', 1), ('s', 'twice', '2026-02-15T00:00:00Z', 1);",
        )
        .unwrap();
    let report = json_of(&db, &["check", "duplicates"], 2);
    assert_eq!(report["duplicated_metric_ids"], 1);
    assert_eq!(report["samples"]["duplicated_metric_ids"][0], "twice");
}

#[test]
fn monthly_ranges_match_pg_partman() {
    let db = TestDatabase::new();
    let mut client = db.client();
    let installed: i64 =
        db.scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_partman'");
    if !crate::support::tool_available(
        "partitions::monthly_ranges_match_pg_partman",
        "pg_partman",
        installed > 0,
        &format!(
            "not an available extension of PostgreSQL {}; Debian: apt-get install \
             postgresql-{}-partman",
            crate::support::server_version(),
            crate::support::server_major_version()
        ),
    ) {
        return;
    }
    client
        .batch_execute("CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman")
        .unwrap_or_else(|e| {
            panic!(
                "pg_partman is needed to compare ranges with it: apt-get install -y \
                 postgresql-$(pg_config --version | sed 's/[^0-9]*\\([0-9]*\\).*/\\1/')-partman ({e})"
            )
        });
    // pg_partman manages a table partitioned like the guide's metrics, in a UTC session; it makes
    // the months from p_start_partition through p_premake months after the current one.
    client.batch_execute("SET TimeZone = 'UTC'").unwrap();
    client
        .batch_execute(
            "CREATE TABLE partman_metrics (id BIGINT, timestamp TIMESTAMPTZ NOT NULL)
             PARTITION BY RANGE (timestamp);
             SELECT partman.create_parent('public.partman_metrics', 'timestamp', 'native', 'monthly',
                                          p_premake := 4, p_start_partition := '2026-01-01');",
        )
        .unwrap();
    let rows = client
        .query(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'partman_metrics'::regclass AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'",
            &[],
        )
        .unwrap();
    let partman: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(partman.len() >= 5, "{partman:?}");

    // Ours, for the same months.
    let ours_db = TestDatabase::new();
    ours_db
        .metricsctl(&["migrate", "--partitioned"])
        .assert()
        .code(0);
    let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let last = current_month(&ours_db) + Months::new(4);
    let months_ahead =
        (last.year() - first.year()) * 12 + last.month() as i32 - first.month() as i32;
    ours_db
        .metricsctl(&[
            "partitions",
            "create",
            "--from",
            "2026-01",
            "--months",
            &months_ahead.to_string(),
        ])
        .assert()
        .code(0);
    let ours: BTreeSet<String> = bounds(&ours_db)
        .into_iter()
        .map(|(_, bound)| bound)
        .filter(|bound| bound != "DEFAULT")
        .collect();
    assert_eq!(ours, partman, "the same monthly ranges as pg_partman");
}
