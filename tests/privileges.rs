//! Least privilege (issue 18): each command needs only what it reads or writes; a check the role
//! may not run says which GRANT it needs while the others give their verdict; `metricsctl grants`
//! gives each role what its commands need, partitions and bookkeeping made later included.

use predicates::str::contains;
use serde_json::Value;

use crate::on_both_layouts;
use crate::support::{Layout, TestDatabase, generate_events, metricsctl, roles, stderr_of};

/// The owner's database, migrated and loaded (`lost` metrics deleted), no grants yet.
fn owners_database(layout: Layout, lost: i64) -> (TestDatabase, tempfile::TempDir) {
    let roles = roles();
    let db = TestDatabase::owned_by(&roles.owner);
    let migrate: &[&str] = match layout {
        Layout::Plain => &["migrate"],
        Layout::Partitioned => &["migrate", "--partitioned"],
    };
    db.metricsctl_as(&roles.owner, migrate).assert().code(0);
    if layout == Layout::Partitioned {
        db.metricsctl_as(
            &roles.owner,
            &["partitions", "create", "--from", "2026-01", "--months", "2"],
        )
        .assert()
        .code(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    // Recent events, in the current month's partition, whatever the date.
    let start = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    metricsctl()
        .args([
            "generate",
            "500",
            "--sensors",
            "10",
            "--seed",
            "4",
            "--start",
            &start,
            "-o",
        ])
        .arg(&events)
        .assert()
        .code(0);
    db.metricsctl_as(&roles.owner, &["replay"])
        .arg(&events)
        .assert()
        .code(0);
    db.client()
        .batch_execute(&format!(
            "DELETE FROM metrics WHERE event_id IN \
             (SELECT event_id FROM metrics ORDER BY event_id LIMIT {lost})"
        ))
        .unwrap();
    (db, dir)
}

fn json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr_of(output)
        )
    })
}

/// The reproduction: CONNECT and SELECT on the two tables, nothing on the sequence.
#[test]
fn a_select_only_monitor_gets_every_verdict_it_may_read_and_the_grant_it_lacks() {
    let roles = roles();
    let (db, _dir) = owners_database(Layout::Plain, 20);
    db.client()
        .batch_execute(&format!(
            "GRANT SELECT ON processed_events, metrics TO \"{}\"",
            roles.monitor
        ))
        .unwrap();
    let output = db
        .metricsctl_as(&roles.monitor, &["check", "--format", "json"])
        .output()
        .unwrap();
    // The lost metrics outrank the check the role could not run.
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let report = json(&output);
    let status_of = |check: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == check)
            .unwrap_or_else(|| panic!("no {check} in {report}"))
            .clone()
    };
    assert_eq!(status_of("ordering")["status"], "OK", "{report}");
    assert_eq!(status_of("duplicates")["status"], "CRITICAL", "{report}");
    assert_eq!(
        status_of("duplicates")["report"]["lost_metrics"],
        20,
        "{report}"
    );
    let sequence = status_of("sequence");
    assert_eq!(sequence["status"], "UNKNOWN", "{report}");
    let grant = format!(
        "GRANT SELECT ON SEQUENCE public.metrics_id_seq TO \"{}\";",
        roles.monitor
    );
    assert!(
        sequence["summary"].as_str().unwrap().contains(&grant),
        "{report}"
    );
    // The same through Nagios: the status line is the worst verdict, the sequence's perfdata
    // is left out rather than invented.
    let nagios = db
        .metricsctl_as(&roles.monitor, &["check", "--format", "nagios"])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&nagios.stdout).to_string();
    assert_eq!(nagios.status.code(), Some(2), "{line}");
    assert!(line.starts_with("METRICSCTL CHECKS CRITICAL"), "{line}");
    assert!(line.contains("lost_metrics=20"), "{line}");
    assert!(!line.contains("sequence_behind="), "{line}");
    // The sequence check alone is UNKNOWN and says the same; the printed GRANT makes it work.
    db.metricsctl_as(&roles.monitor, &["check", "sequence"])
        .assert()
        .code(3)
        .stderr(contains(grant.as_str()));
    db.client().batch_execute(&grant).unwrap();
    db.metricsctl_as(&roles.monitor, &["check", "sequence"])
        .assert()
        .code(0);
}

#[test]
fn a_role_that_may_not_write_is_told_the_grant_before_anything_is_read() {
    let roles = roles();
    let (db, dir) = owners_database(Layout::Plain, 0);
    db.client()
        .batch_execute(&format!(
            "GRANT SELECT ON processed_events, metrics TO \"{}\"",
            roles.monitor
        ))
        .unwrap();
    let more = dir.path().join("more.jsonl");
    generate_events(&more, 50, 2, 77, "jsonl");
    let before = db.count("SELECT count(*) FROM processed_events");
    db.metricsctl_as(&roles.monitor, &["replay"])
        .arg(&more)
        .assert()
        .code(3)
        .stderr(contains("INSERT on \"public\".\"processed_events\""))
        .stderr(contains("metricsctl grants --writer"));
    // A dry run only reads: allowed.
    db.metricsctl_as(&roles.monitor, &["replay", "--dry-run"])
        .arg(&more)
        .assert()
        .code(0);
    assert_eq!(db.count("SELECT count(*) FROM processed_events"), before);
}

fn grants_give_each_role_what_its_commands_need(layout: Layout) {
    let roles = roles();
    let (db, dir) = owners_database(layout, 5);
    printed_grants_change_nothing_and_applied_ones_let_the_monitor_in(&db);
    let mut monitoring: Vec<Vec<&str>> = vec![
        vec!["check", "--format", "json"],
        vec!["lag", "--format", "json"],
        vec!["rate", "--format", "json"],
        vec!["migrate", "status", "--format", "json"],
    ];
    if layout == Layout::Partitioned {
        monitoring.push(vec!["partitions", "list", "--exact", "--format", "json"]);
    }
    for args in &monitoring {
        the_monitor_gets_a_verdict(&db, args);
    }
    // The writer replays, dry runs and restores; it cannot repair (the owner's job).
    let more = dir.path().join("more.jsonl");
    generate_events(&more, 300, 5, 12, "jsonl");
    the_writer_replays_but_cannot_repair(&db, &more);
    // Made later by the owner: a month's partition and the retired events' bookkeeping. The
    // default privileges cover both.
    if layout == Layout::Partitioned {
        db.metricsctl_as(
            &roles.owner,
            &[
                "partitions",
                "create",
                "--from",
                "2027-06",
                "--months",
                "0",
                "--no-fill",
            ],
        )
        .assert()
        .code(0);
        db.metricsctl_as(&roles.owner, &["partitions", "drop", "--older-than", "1"])
            .assert()
            .code(0);
        assert!(db.relation_exists("metricsctl_retired_events"));
        for args in &monitoring {
            the_monitor_gets_a_verdict(&db, args);
        }
        db.metricsctl_as(&roles.writer, &["replay", "--repair"])
            .arg(&more)
            .assert()
            .code(0);
    }
}

/// Printing the grants changes nothing (the monitor can read nothing yet); applying them for the
/// monitor and the writer works.
fn printed_grants_change_nothing_and_applied_ones_let_the_monitor_in(db: &TestDatabase) {
    let roles = roles();
    // Printing changes nothing; the monitor can read nothing yet.
    db.metricsctl_as(&roles.owner, &["grants", "--monitor", &roles.monitor])
        .assert()
        .code(0)
        .stdout(contains(format!(
            "GRANT SELECT ON \"public\".processed_events, \"public\".metrics TO \"{}\";",
            roles.monitor
        )));
    db.metricsctl_as(&roles.monitor, &["lag"]).assert().code(3);
    crate::support::scenarios::grant_the_monitor_and_the_writer(db);
}

/// The monitor running `args` gets a verdict: never exit 3, nothing UNKNOWN in the JSON.
fn the_monitor_gets_a_verdict(db: &TestDatabase, args: &[&str]) {
    let output = db.metricsctl_as(&roles().monitor, args).output().unwrap();
    assert_ne!(
        output.status.code(),
        Some(3),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr_of(&output)
    );
    let report = json(&output);
    assert!(
        !report.to_string().contains("UNKNOWN"),
        "{args:?}: {report}"
    );
}

/// The writer replays `more`, dry run and for real; repair is the owner's and refused.
fn the_writer_replays_but_cannot_repair(db: &TestDatabase, more: &std::path::Path) {
    let roles = roles();
    db.metricsctl_as(&roles.writer, &["replay", "--dry-run"])
        .arg(more)
        .assert()
        .code(0);
    db.metricsctl_as(&roles.writer, &["replay", "--jobs", "3"])
        .arg(more)
        .assert()
        .code(0);
    db.metricsctl_as(&roles.writer, &["repair"])
        .assert()
        .code(3)
        .stderr(contains("only the owner of the tables"));
}

on_both_layouts!(grants_give_each_role_what_its_commands_need);

#[test]
fn grants_refuse_a_role_that_does_not_exist_and_change_nothing() {
    let roles = roles();
    let (db, _dir) = owners_database(Layout::Plain, 0);
    db.metricsctl_as(
        &roles.owner,
        &["grants", "--monitor", "nobody_here", "--apply"],
    )
    .assert()
    .code(3)
    .stderr(contains("there is no role nobody_here"));
    db.metricsctl_as(&roles.owner, &["grants"]).assert().code(3);
}

/// A GRANT the server only warns about (the one granting holds no grant option) is not reported
/// as done: everything is rolled back and the role named with what it still lacks.
#[test]
fn grants_that_the_server_did_not_give_are_rolled_back_and_named() {
    let roles = roles();
    let (db, _dir) = owners_database(Layout::Plain, 0);
    db.client()
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" OWNER TO postgres;
             REVOKE CONNECT ON DATABASE \"{db}\" FROM PUBLIC;
             GRANT CONNECT ON DATABASE \"{db}\" TO \"{owner}\";",
            db = db.name,
            owner = roles.owner
        ))
        .unwrap();
    db.metricsctl_as(
        &roles.owner,
        &["grants", "--monitor", &roles.monitor, "--apply"],
    )
    .assert()
    .code(3)
    .stderr(contains(format!(
        "{} still lacks CONNECT on the database",
        roles.monitor
    )))
    .stderr(contains("rolled back, nothing was changed"));
    let granted: bool = db.scalar(&format!(
        "SELECT has_table_privilege('{}', 'metrics', 'SELECT')",
        roles.monitor
    ));
    assert!(!granted, "nothing was committed");
}

/// Role names are quoted identifiers whatever they hold: a `;` splits no statement, a `:'` is
/// not read as a variable.
#[test]
fn grants_quote_any_role_name() {
    let roles = roles();
    let (db, _dir) = owners_database(Layout::Plain, 0);
    let odd = format!("odd;role:'x' {}", std::process::id());
    db.client()
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS \"{odd}\"; CREATE ROLE \"{odd}\""
        ))
        .unwrap();
    db.metricsctl_as(&roles.owner, &["grants", "--monitor", &odd, "--apply"])
        .assert()
        .code(0);
    let granted: bool = db.scalar(&format!(
        "SELECT has_table_privilege('{}', 'metrics', 'SELECT')",
        odd.replace('\'', "''")
    ));
    assert!(granted);
    db.client()
        .batch_execute(&format!("DROP OWNED BY \"{odd}\"; DROP ROLE \"{odd}\""))
        .unwrap();
}
