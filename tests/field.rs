//! The database as operators really find it (issue 19): PGOPTIONS, schemas missing a key,
//! advice that can work, PostgreSQL's own timestamp rounding, standbys, retention in summaries.

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

use crate::on_both_layouts;
use crate::support::{
    Layout, TestDatabase, assert_exactly_once, event_line, json_of, metricsctl, stderr_of,
    write_lines,
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
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    write_lines(
        &events,
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
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.jsonl");
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
    write_lines(&dump, &lines);
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
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.jsonl");
    write_lines(
        &dump,
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

#[test]
fn check_duplicates_counts_retired_events_apart_from_the_ones_stored() {
    let db = TestDatabase::new();
    db.migrate_as(Layout::Partitioned);
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.jsonl");
    let long_ago: String = db.scalar("SELECT to_char(now() - interval '30 months', 'YYYY-MM')");
    db.metricsctl(&[
        "partitions",
        "create",
        "--from",
        &long_ago,
        "--months",
        "0",
        "--no-fill",
    ])
    .assert()
    .code(0);
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
    write_lines(&dump, &lines);
    assert_eq!(db.replay(&[], &[&dump]).0, 0);
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
    let db = TestDatabase::new();
    db.migrate_as(Layout::Partitioned);
    db.metricsctl(&["partitions", "create", "--from", "2026-02", "--months", "1"])
        .assert()
        .code(0);
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
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.jsonl");
    let lines: Vec<String> = fractions
        .iter()
        .enumerate()
        .map(|(i, at)| event_line(&format!("e{i}"), "s1", at, 1.0))
        .collect();
    write_lines(&dump, &lines);
    let (code, summary) = db.replay(&[], &[&dump]);
    assert_eq!(code, 0, "{summary}");
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
    let db = TestDatabase::new();
    db.migrate();
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
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.jsonl");
    crate::support::generate_events(&dump, 20_000, 10, 5, "jsonl");
    // With and without a --timeout of its own, longer than the role's: metricsctl never raises
    // the role's bound.
    for timeout in ["0", "10m"] {
        let output = db
            .metricsctl_as(role, &["replay", "--format", "json", "--timeout", timeout])
            .arg(&dump)
            .output()
            .unwrap();
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("role's statement_timeout (300ms)"),
            "{stderr}"
        );
        assert!(stderr.contains("metricsctl never raises it"), "{stderr}");
        assert!(stderr.contains("ALTER ROLE"), "{stderr}");
        assert!(!stderr.contains("To finish, rerun"), "{stderr}");
    }
    assert_eq!(db.count("SELECT count(*) FROM processed_events"), 0);

    // Set by the client (PGOPTIONS), it is named as the client's, with where to change it.
    let output = db
        .metricsctl(&["replay", "--format", "json"])
        .env("PGOPTIONS", "-c statement_timeout=300ms")
        .arg(&dump)
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("statement_timeout this connection asked for (300ms)")
            && stderr.contains("PGOPTIONS"),
        "{stderr}"
    );
}

#[test]
fn a_check_keeps_the_role_statement_timeout_and_says_which_it_was() {
    let db = TestDatabase::new();
    db.migrate();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.jsonl");
    crate::support::generate_events(&dump, 20_000, 10, 6, "jsonl");
    let (code, summary) = db.replay(&[], &[&dump]);
    assert_eq!(code, 0, "{summary}");
    // psql's statement is cancelled at 1 ms; metricsctl's 30 s default --timeout must not lift
    // the bound for its own.
    let output = db
        .metricsctl(&["check", "duplicates"])
        .env("PGOPTIONS", "-c statement_timeout=1ms")
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("statement_timeout") && stderr.contains("never raises it"),
        "{stderr}"
    );
}

#[test]
fn a_full_disk_is_named_with_what_to_free_not_a_plain_rerun() {
    let db = TestDatabase::new();
    db.migrate();
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
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.jsonl");
    write_lines(
        &dump,
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
    let db = TestDatabase::new();
    db.migrate();
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
    assert!(stderr.contains("stopped in its backfill step"), "{stderr}");
    assert!(stderr.contains("statement_timeout (150ms)"), "{stderr}");
    assert!(stderr.contains("metricsctl never raises it"), "{stderr}");
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
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    crate::support::generate_events(&events, 3_000, 10, 8, "jsonl");
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

    let schema_before = crate::support::schema_dump(&db);
    for args in [
        &["replay", events.to_str().unwrap()][..],
        &["replay", "--dry-run", events.to_str().unwrap()],
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
    assert_eq!(crate::support::schema_dump(&db), schema_before);
    assert_exactly_once(&db, 3_000);
    drop(standby);
}
