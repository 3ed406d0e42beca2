//! `metricsctl demo`, the newcomer's first command.

use std::path::PathBuf;

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

use crate::support::{TestDatabase, connect_url, installation, metricsctl, pg_tool, stdout_of};

/// The sandbox directory the demo reports on stderr.
fn sandbox_directory(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Started PostgreSQL on"))
        .unwrap_or_else(|| panic!("no start line in: {stderr}"));
    let dir = line.rsplit(" in ").next().unwrap().trim_end_matches('.');
    PathBuf::from(dir)
}

#[test]
fn demo_runs_on_a_throwaway_postgres_and_removes_it() {
    let assert = metricsctl()
        .arg("demo")
        .assert()
        .code(0)
        .stdout(contains("create_processed_events"))
        .stdout(contains("applied"))
        .stdout(contains("│ inserted          ┆ 3000"))
        .stdout(contains("│ already present   ┆ 3000"))
        .stderr(contains(
            "sample-events.jsonl:707: field \"value\" must be a number",
        ))
        .stdout(contains(
            "CRITICAL: 1 out-of-order event for sensor sensor_002",
        ))
        .stdout(contains("│ duplicates ┆ OK"))
        // The window for monitoring leaves the late event to the full check.
        .stderr(contains("Step 7: check --since 5m"))
        .stderr(contains("→ exit 0 (OK): OK is expected"))
        // find → repair → check OK
        .stdout(contains(
            "CRITICAL: 1 processed events without their metric (lost)",
        ))
        .stderr(contains("Repair changed 1 row(s)."))
        .stdout(contains("│ restored          ┆ 1"))
        .stdout(contains(
            "OK: 3000 events, each once in processed_events and once in metrics",
        ))
        // A monitoring role gets its grants and judges as the owner does; a check behind a lock
        // gives up at its --timeout and names the holder.
        .stderr(contains(
            "GRANT SELECT ON SEQUENCE \"public\".\"metrics_id_seq\" TO \"nagios\";",
        ))
        .stderr(contains(
            "→ exit 2 (CRITICAL): the monitor runs every check",
        ))
        .stdout(contains(
            "METRICSCTL CHECKS UNKNOWN - timed out after 1s (--timeout)",
        ))
        .stdout(contains("(application \"vacuum-full-metrics\""))
        .stderr(contains("→ exit 3 (UNKNOWN): UNKNOWN is expected"))
        // On a hot standby the checks read as on the primary; replay refuses, naming it.
        .stderr(contains("in recovery, caught up."))
        .stderr(contains(
            "error: this server is a standby (in recovery): replay writes",
        ))
        .stderr(contains("→ exit 2 (CRITICAL): the standby's check finds"))
        .stdout(contains("latency p95"))
        .stdout(contains("events per minute"))
        .stderr(contains("Stopped and removed"));
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let dir = sandbox_directory(&stderr);
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

#[test]
fn demo_keep_leaves_a_usable_server_and_says_how_to_remove_it() {
    let assert = metricsctl().args(["demo", "--keep"]).assert().code(0);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let dir = sandbox_directory(&stderr);
    let url = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("export DATABASE_URL="))
        .unwrap_or_else(|| panic!("no URL in: {stdout}"))
        .to_string();
    let removal = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Stop and remove it with:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no removal command in: {stdout}"))
        .trim()
        .to_string();

    let metrics_tables: i64 = connect_url(&url)
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('metrics', 'processed_events')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(metrics_tables, 2);
    // The demo's server is the installation the harness uses (METRICSCTL_PG_BINDIR, in CI).
    let server_version: String = connect_url(&url)
        .query_one("SHOW server_version", &[])
        .unwrap()
        .get(0);
    let installed = std::process::Command::new(pg_tool("postgres"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        stdout_of(&installed)
            .trim()
            .ends_with(&format!(" {server_version}")),
        "demo ran PostgreSQL {server_version}, not {}",
        installation()
    );
    metricsctl()
        .args(["migrate", "status"])
        .env("DATABASE_URL", &url)
        .assert()
        .code(0);

    let removed = std::process::Command::new("sh")
        .args(["-c", &removal])
        .output()
        .unwrap();
    assert!(removed.status.success(), "{removal}: {:?}", removed);
    assert!(!dir.exists());
}

#[test]
fn demo_uses_the_configured_database_when_there_is_one() {
    let db = TestDatabase::new();
    db.metricsctl(&["demo", "--yes"])
        .assert()
        .code(0)
        .stderr(contains("configured database"))
        .stderr(contains("Started PostgreSQL").not())
        // No role is made and no lock taken on a database someone configured.
        .stderr(contains("grants --monitor nagios").not())
        .stderr(contains("behind a lock").not());
    assert!(db.relation_exists("metrics"));
}

#[test]
fn demo_partitioned_shows_the_partitions_and_their_check() {
    metricsctl()
        .args(["demo", "--partitioned"])
        .assert()
        .code(0)
        .stderr(contains("metrics is partitioned by month"))
        .stdout(contains("metrics_default"))
        .stdout(contains("│ partitions ┆ OK"))
        .stdout(contains("│ inserted          ┆ 3000"));
}

#[test]
fn demo_asks_before_writing_into_a_configured_database() {
    let db = TestDatabase::new();
    // No answer (stdin closed), or "no": nothing is written.
    for answer in ["", "n\n", "whatever\n"] {
        db.metricsctl(&["demo"])
            .write_stdin(answer)
            .assert()
            .code(3)
            .stderr(contains("Go on? [y/N]"))
            .stderr(contains("nothing was written"));
        assert!(!db.relation_exists("metrics"), "{answer:?}");
    }
    db.metricsctl(&["demo"])
        .write_stdin("y\n")
        .assert()
        .code(0)
        .stderr(contains("configured database"));
    assert!(db.relation_exists("metrics"));
    assert_eq!(db.count("SELECT count(*) FROM metrics"), 3000);
}

#[test]
fn a_bindir_without_the_server_programs_is_refused_with_exit_3() {
    let empty = tempfile::tempdir().unwrap();
    metricsctl()
        .arg("demo")
        .env("METRICSCTL_PG_BINDIR", empty.path())
        .assert()
        .code(3)
        .stderr(contains(format!(
            "METRICSCTL_PG_BINDIR={} has no initdb, pg_ctl, postgres",
            empty.path().display()
        )))
        .stderr(contains("Started PostgreSQL").not());
}
