//! The database as operators really find it (issue 19): PGOPTIONS, schemas missing a key,
//! advice that can work, PostgreSQL's own timestamp rounding, standbys, retention in summaries.

use std::path::Path;

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

use crate::on_both_layouts;
use crate::support::scenarios::{
    assert_says, generated_file, migrated_database, stderr_exiting, written_file,
};
use crate::support::{
    Layout, TestDatabase, assert_exactly_once, event_line, json_of, metricsctl, stderr_of,
};

#[test]
fn pgoptions_search_path_points_every_command_at_another_schema_as_psql() {
    let db = TestDatabase::new();
    db.client()
        .batch_execute("CREATE SCHEMA telemetry")
        .unwrap();
    let in_telemetry = |args: &[&str]| {
        let mut command = db.metricsctl(args);
        command.env("PGOPTIONS", "-c search_path=telemetry");
        command
    };
    in_telemetry(&["migrate"]).assert().code(0);
    assert!(!db.relation_exists("public.metrics"), "nothing in public");
    assert!(db.relation_exists("telemetry.metrics"));
    let (_dir, events) = written_file(
        "events.jsonl",
        &[
            event_line("e1", "s1", "2026-01-01T00:00:00Z", 1.0),
            event_line("e2", "s1", "2026-01-01T00:00:01Z", 2.0),
        ],
    );
    in_telemetry(&["replay"]).arg(&events).assert().code(0);
    in_telemetry(&["check"]).assert().code(0);
    assert_eq!(db.count("SELECT count(*) FROM telemetry.metrics"), 2);
    // Without it, the session's path is public's: no tables there, and the message says where
    // metricsctl looked.
    db.metricsctl(&["check"])
        .assert()
        .code(3)
        .stderr(contains("does not exist in schema public"));
    // The connection string's options win over PGOPTIONS, as in libpq.
    let url = format!("{}?options=-csearch_path%3Dtelemetry", db.url);
    metricsctl()
        .args(["check", "--database-url", &url])
        .env("PGOPTIONS", "-c search_path=public")
        .assert()
        .code(0);
}

/// A restore that stopped before its constraints (or a hand) dropped metrics' unique key: replay
/// of a dump must not store a second copy of a metric whose guard row is missing.
fn a_replay_without_metrics_unique_key_stores_no_second_copy(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    let key = match layout {
        Layout::Plain => "metrics_event_id_key",
        Layout::Partitioned => "metrics_event_id_timestamp_key",
    };
    let lines: Vec<String> = (0..50)
        .map(|i| {
            event_line(
                &format!("e{i}"),
                "s1",
                &format!("2026-02-01T00:00:{i:02}Z"),
                1.0,
            )
        })
        .collect();
    let (_dir, dump) = written_file("dump.jsonl", &lines);
    assert_eq!(db.replay(&[], &[&dump]).0, 0);
    // The guard rows of half the events were lost with the key.
    db.client()
        .batch_execute(&format!(
            "ALTER TABLE metrics DROP CONSTRAINT {key};
             DELETE FROM processed_events WHERE event_id IN
                 (SELECT event_id FROM processed_events ORDER BY event_id LIMIT 25)"
        ))
        .unwrap();
    let (code, summary) = db.replay(&[], &[&dump]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["inserted"], 0, "{summary}");
    assert_exactly_once(&db, 50);
}

/// Without the guard's primary key the insert path cannot work: replay refuses before writing
/// and names `metricsctl repair`.
fn a_replay_without_the_guards_key_is_refused_naming_repair(layout: Layout) {
    let db = TestDatabase::new();
    db.migrate_as(layout);
    db.client()
        .batch_execute("ALTER TABLE processed_events DROP CONSTRAINT processed_events_pkey")
        .unwrap();
    let (_dir, dump) = written_file(
        "dump.jsonl",
        &[event_line("e1", "s1", "2026-02-01T00:00:00Z", 1.0)],
    );
    db.metricsctl(&["replay"])
        .arg(&dump)
        .assert()
        .code(3)
        .stderr(contains("processed_events_pkey"))
        .stderr(contains("metricsctl repair"));
    assert_eq!(db.count("SELECT count(*) FROM processed_events"), 0);
    db.metricsctl(&["repair"]).assert().code(0);
    assert_eq!(db.replay(&[], &[&dump]).0, 0);
    assert_exactly_once(&db, 1);
}

on_both_layouts!(
    a_replay_without_metrics_unique_key_stores_no_second_copy,
    a_replay_without_the_guards_key_is_refused_naming_repair,
);

/// A fresh database of the partitioned layout.
fn partitioned_database() -> TestDatabase {
    let db = TestDatabase::new();
    db.migrate_as(Layout::Partitioned);
    db
}

/// Runs `partitions create ARGS` and insists it worked.
fn create_partitions(db: &TestDatabase, args: &[&str]) {
    db.metricsctl(&[&["partitions", "create"][..], args].concat())
        .assert()
        .code(0);
}

/// `lines` written to `dump.jsonl` and replayed, which must work: the file's directory.
fn replayed(db: &TestDatabase, lines: &[String]) -> tempfile::TempDir {
    let (dir, dump) = written_file("dump.jsonl", lines);
    let (code, summary) = db.replay(&[], &[&dump]);
    assert_eq!(code, 0, "{summary}");
    dir
}

#[test]
fn check_duplicates_counts_retired_events_apart_from_the_ones_stored() {
    let db = partitioned_database();
    let long_ago: String = db.scalar("SELECT to_char(now() - interval '30 months', 'YYYY-MM')");
    create_partitions(&db, &["--from", &long_ago, "--months", "0", "--no-fill"]);
    let mut lines: Vec<String> = (0..5)
        .map(|i| {
            event_line(
                &format!("old{i}"),
                "s1",
                &format!("{long_ago}-02T00:00:0{i}Z"),
                1.0,
            )
        })
        .collect();
    lines.extend((0..7).map(|i| {
        event_line(
            &format!("new{i}"),
            "s1",
            &format!("2026-02-01T00:00:0{i}Z"),
            1.0,
        )
    }));
    let _dump = replayed(&db, &lines);
    db.metricsctl(&["partitions", "drop", "--older-than", "24"])
        .assert()
        .code(0);
    let report = json_of(&db, &["check", "duplicates"], 0);
    let summary = report["summary"].as_str().unwrap();
    assert!(
        summary.contains("7 events, each once in processed_events and once in metrics")
            && summary.contains("5 retired by retention"),
        "{summary}"
    );
}

#[test]
fn timestamps_are_rounded_to_the_microsecond_as_postgresql_rounds_them() {
    let db = partitioned_database();
    create_partitions(&db, &["--from", "2026-02", "--months", "1"]);
    let fractions = [
        "2026-02-28T23:59:59.9999999Z",
        "2026-02-28T23:59:59.9999995Z",
        "2026-02-28T23:59:59.9999994Z",
        "2026-02-10T10:00:00.0000005Z",
        "2026-02-10T10:00:00.0000015Z",
        "2026-02-10T10:00:00.0000025Z",
        "2026-02-10T10:00:00.123456789Z",
        "2026-02-10T10:00:00.1234565Z",
        "2026-02-10T10:00:00.5000005+02:00",
        "2026-02-10T10:00:00.99999999999Z",
    ];
    let lines: Vec<String> = fractions
        .iter()
        .enumerate()
        .map(|(i, at)| event_line(&format!("e{i}"), "s1", at, 1.0))
        .collect();
    let _dump = replayed(&db, &lines);
    let mut client = db.client();
    for (i, at) in fractions.iter().enumerate() {
        // PostgreSQL's own reading of the same text is the oracle.
        let row = client
            .query_one(
                "SELECT m.timestamp = CAST($2 AS text)::timestamptz, m.timestamp::text,
                        CAST($2 AS text)::timestamptz::text, m.tableoid::regclass::text
                 FROM metrics m WHERE m.event_id = $1",
                &[&format!("e{i}"), at],
            )
            .unwrap();
        let (same, stored, postgres, partition): (bool, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert!(same, "{at}: stored {stored}, PostgreSQL reads {postgres}");
        if i == 0 {
            assert_eq!(partition, "metrics_2026_03", "{at} is March in PostgreSQL");
        }
    }
}

#[test]
fn a_role_statement_timeout_is_named_with_what_to_change_not_a_plain_rerun() {
    let db = migrated_database();
    let role = &crate::support::roles().owner;
    db.client()
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" OWNER TO \"{role}\";
             ALTER TABLE processed_events OWNER TO \"{role}\";
             ALTER TABLE metrics OWNER TO \"{role}\";
             ALTER ROLE \"{role}\" IN DATABASE \"{}\" SET statement_timeout = '300ms';
             -- A batch that takes longer than that, whatever the machine's speed.
             CREATE FUNCTION slow_batch() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_sleep(0.6); RETURN NULL; END $$;
             CREATE TRIGGER slow_batch AFTER INSERT ON processed_events
                 FOR EACH STATEMENT EXECUTE FUNCTION slow_batch();",
            db.name, db.name
        ))
        .unwrap();
    let (_dir, dump) = generated_file("dump.jsonl", 20_000, 10, 5);
    // With and without a --timeout of its own, longer than the role's: metricsctl never raises
    // the role's bound.
    for timeout in ["0", "10m"] {
        let stderr = replay_exiting_2_saying(
            db.metricsctl_as(role, &["replay", "--format", "json", "--timeout", timeout]),
            &dump,
            &[
                "role's statement_timeout (300ms)",
                "metricsctl never raises it",
                "ALTER ROLE",
            ],
        );
        assert!(!stderr.contains("To finish, rerun"), "{stderr}");
    }
    assert_eq!(db.count("SELECT count(*) FROM processed_events"), 0);

    // Set by the client (PGOPTIONS), it is named as the client's, with where to change it.
    let mut replay = db.metricsctl(&["replay", "--format", "json"]);
    replay.env("PGOPTIONS", "-c statement_timeout=300ms");
    replay_exiting_2_saying(
        replay,
        &dump,
        &[
            "statement_timeout this connection asked for (300ms)",
            "PGOPTIONS",
        ],
    );
}

/// Runs `replay` on `dump`, which must exit 2 saying each of `says`: all it said on stderr.
fn replay_exiting_2_saying(mut replay: assert_cmd::Command, dump: &Path, says: &[&str]) -> String {
    let output = replay.arg(dump).output().unwrap();
    let stderr = stderr_exiting(&output, 2);
    assert_says(&stderr, says);
    stderr
}

#[test]
fn a_check_keeps_the_role_statement_timeout_and_says_which_it_was() {
    let db = migrated_database();
    let (_dir, dump) = generated_file("dump.jsonl", 20_000, 10, 6);
    let (code, summary) = db.replay(&[], &[&dump]);
    assert_eq!(code, 0, "{summary}");
    // psql's statement is cancelled at 1 ms; metricsctl's 30 s default --timeout must not lift
    // the bound for its own.
    let output = db
        .metricsctl(&["check", "duplicates"])
        .env("PGOPTIONS", "-c statement_timeout=1ms")
        .output()
        .unwrap();
    let stderr = stderr_exiting(&output, 3);
    assert_says(&stderr, &["statement_timeout", "never raises it"]);
}

#[test]
fn a_full_disk_is_named_with_what_to_free_not_a_plain_rerun() {
    let db = migrated_database();
    // The server's own answer to a full disk, SQLSTATE 53100, from the first batch's guard rows.
    db.client()
        .batch_execute(
            "CREATE FUNCTION disk_is_full() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION USING ERRCODE = 'disk_full',
                 MESSAGE = 'could not extend file \"base/16384/16390\": No space left on device';
             END $$;
             CREATE TRIGGER disk_is_full BEFORE INSERT ON processed_events
                 FOR EACH STATEMENT EXECUTE FUNCTION disk_is_full();",
        )
        .unwrap();
    let (_dir, dump) = written_file(
        "dump.jsonl",
        &[event_line("e1", "s1", "2026-02-01T00:00:00Z", 1.0)],
    );
    db.metricsctl(&["replay"])
        .arg(&dump)
        .assert()
        .code(2)
        .stderr(contains("53100"))
        .stderr(contains("free space"))
        .stderr(contains("To finish, rerun").not());
}

#[test]
fn an_enable_stopped_by_a_statement_timeout_names_its_step_and_status_shows_it() {
    let db = migrated_database();
    let role = &crate::support::roles().owner;
    // 200,000 rows, never analyzed, copied in one backfill batch that takes longer than the
    // role's statement_timeout.
    db.client()
        .batch_execute(&format!(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value)
             SELECT 's' || (i % 50), 'e' || i, now() - i * interval '1 second', i
             FROM generate_series(1, 200000) AS i;
             INSERT INTO processed_events (event_id, sensor_id) SELECT event_id, sensor_id FROM metrics;
             ALTER TABLE processed_events OWNER TO \"{role}\";
             ALTER TABLE metrics OWNER TO \"{role}\";
             ALTER DATABASE \"{db}\" OWNER TO \"{role}\";
             ALTER SCHEMA public OWNER TO \"{role}\";
             ALTER ROLE \"{role}\" IN DATABASE \"{db}\" SET statement_timeout = '150ms'",
            db = db.name
        ))
        .unwrap();
    let output = db
        .metricsctl_as(
            role,
            &[
                "partitions",
                "enable",
                "--batch-size",
                "1000000",
                "--copy-share",
                "100",
            ],
        )
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert_says(
        &stderr,
        &[
            "stopped in its backfill step",
            "statement_timeout (150ms)",
            "metricsctl never raises it",
        ],
    );
    let status = db
        .metricsctl_as(role, &["partitions", "enable", "--status"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(shown.contains("backfill"), "{shown}");
    assert!(shown.contains("statement timeout"), "{shown}");
    assert!(!shown.contains("of ~0"), "{shown}");
    assert!(shown.contains("the total is not known"), "{shown}");
    // With the role's bound raised the rerun finishes, every row kept.
    db.client()
        .batch_execute(&format!(
            "ALTER ROLE \"{role}\" IN DATABASE \"{}\" RESET statement_timeout",
            db.name
        ))
        .unwrap();
    db.metricsctl_as(role, &["partitions", "enable"])
        .assert()
        .code(0);
    assert_eq!(db.count("SELECT count(*) FROM metrics"), 200_000);
}

/// Waits until the standby has replayed what the primary committed (its processed_events count).
fn wait_for_standby(standby_url: &str, expected: i64) {
    let mut client = crate::support::connect_url(standby_url);
    crate::support::wait_until("the standby to catch up", || {
        client
            .query_one("SELECT count(*) FROM processed_events", &[])
            .map(|row| row.get::<_, i64>(0) == expected)
            .unwrap_or(false)
    });
}

#[test]
fn on_a_hot_standby_reads_work_and_every_write_refuses_first_naming_it() {
    use metricsctl::db::sandbox::{Sandbox, SandboxOptions};
    let primary = Sandbox::start(&SandboxOptions::default()).expect("starting the primary");
    let db = TestDatabase::on_server(&primary.url("postgres"));
    db.migrate();
    let (_dir, events) = crate::support::scenarios::generated_events(3_000, 10, 8);
    let (code, summary) = db.replay(&[], &[&events]);
    assert_eq!(code, 0, "{summary}");
    db.metricsctl(&["partitions", "enable", "--offline"])
        .assert()
        .code(0);
    db.metricsctl(&["partitions", "create", "--months", "3"])
        .assert()
        .code(0);
    let standby = primary.start_standby().expect("starting a hot standby");
    let standby_url = crate::support::url_with_database(&standby.url("postgres"), &db.name);
    wait_for_standby(&standby_url, 3_000);
    let on_standby = |args: &[&str]| {
        metricsctl()
            .args(args)
            .arg("--database-url")
            .arg(&standby_url)
            .output()
            .unwrap()
    };
    reads_on_the_standby_end_as_on_the_primary(&db, &on_standby);
    writes_on_the_standby_refuse_naming_it(&db, &on_standby, events.to_str().unwrap());
    drop(standby);
}

/// Every read (checks, lag, rate, status, listings, dry runs) exits on the standby with the
/// code it has on the primary, and none with 3: a standby is a place to monitor from.
fn reads_on_the_standby_end_as_on_the_primary(
    db: &TestDatabase,
    on_standby: &dyn Fn(&[&str]) -> std::process::Output,
) {
    for args in [
        &["check", "all"][..],
        &["check", "duplicates", "--format", "json"],
        &["check", "ordering", "--sensor", "sensor_001"],
        &["lag", "--format", "json"],
        &["rate", "--format", "json"],
        &["migrate", "status"],
        &["partitions", "list"],
        &["partitions", "enable", "--dry-run"],
        &["partitions", "create", "--months", "6", "--dry-run"],
        &["partitions", "drop", "--older-than", "1", "--dry-run"],
        &["partitions", "enable", "--status"],
        &["grants", "--monitor", "postgres"],
    ] {
        let output = on_standby(args);
        let on_primary = db.metricsctl(args).output().unwrap();
        assert_eq!(
            output.status.code(),
            on_primary.status.code(),
            "{args:?} on the standby: {}{}",
            crate::support::stdout_of(&output),
            stderr_of(&output)
        );
        assert_ne!(
            output.status.code(),
            Some(3),
            "{args:?}: {}",
            stderr_of(&output)
        );
    }
}

/// Every write (and the dry runs that would take a writer's locks) refuses on the standby with
/// 3, naming the standby before it tries anything (never PostgreSQL's "read-only transaction");
/// the primary's schema and events are as they were.
fn writes_on_the_standby_refuse_naming_it(
    db: &TestDatabase,
    on_standby: &dyn Fn(&[&str]) -> std::process::Output,
    events: &str,
) {
    let schema_before = crate::support::schema_dump(db);
    for args in [
        &["replay", events][..],
        &["replay", "--dry-run", events],
        &["repair"],
        &["repair", "--dry-run"],
        &["migrate"],
        &["migrate", "repair"],
        &["partitions", "create", "--months", "3"],
        &["partitions", "drop", "--older-than", "1"],
        &["partitions", "enable"],
        &["grants", "--monitor", "nagios", "--apply"],
    ] {
        let output = on_standby(args);
        let said = stderr_of(&output);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {said}");
        assert!(
            said.contains("this server is a standby (in recovery)"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("read-only transaction"), "{args:?}: {said}");
    }
    assert_eq!(crate::support::schema_dump(db), schema_before);
    assert_exactly_once(db, 3_000);
}
