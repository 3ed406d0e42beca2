//! The command line itself: the exit-code convention (a test per row), help, completions.

use predicates::str::contains;

use crate::support::{TestDatabase, metricsctl};

#[test]
fn exit_0_ok_when_the_work_is_done() {
    let db = TestDatabase::new();
    db.metricsctl(&["migrate"]).assert().code(0);
    db.metricsctl(&["migrate", "status"]).assert().code(0);
}

#[test]
fn exit_1_warning_when_migrations_are_pending() {
    let db = TestDatabase::new();
    db.metricsctl(&["migrate", "status"]).assert().code(1);
}

#[test]
fn exit_2_critical_when_the_database_has_a_problem() {
    let db = TestDatabase::new();
    db.migrate();
    db.client()
        .execute(
            "UPDATE refinery_schema_history SET checksum = '1' WHERE version = 2",
            &[],
        )
        .unwrap();
    db.metricsctl(&["migrate", "status"]).assert().code(2);
    db.metricsctl(&["migrate"]).assert().code(2);
}

#[test]
fn exit_2_critical_when_a_migration_fails_on_the_database() {
    let db = TestDatabase::new();
    // A table in the way that the migration's index cannot be built on.
    db.client()
        .batch_execute("CREATE TABLE metrics (unrelated int)")
        .unwrap();
    db.metricsctl(&["migrate"])
        .assert()
        .code(2)
        .stderr(contains("rolled back"));
    assert!(
        !db.relation_exists("processed_events"),
        "a failed run must leave nothing half-applied"
    );
}

#[test]
fn exit_3_unknown_when_metricsctl_cannot_run() {
    metricsctl()
        .args(["migrate", "--database-url", "postgresql://x@127.0.0.1:1/x"])
        .assert()
        .code(3);
    // Usage errors: clap's own exit 2 would read as CRITICAL, so they are mapped to 3.
    metricsctl()
        .args(["migrate", "--lock-timeout", "soon"])
        .assert()
        .code(3)
        .stderr(contains("90s"));
    metricsctl().args(["no-such-command"]).assert().code(3);
    metricsctl().assert().code(3).stderr(contains("Usage"));
    metricsctl()
        .args([
            "migrate",
            "--database-url",
            "postgresql://u:pw@h/db?sslmode=sometimes",
        ])
        .assert()
        .code(3)
        .stderr(contains("sslmode"));
}

#[test]
fn help_and_version_exit_0_and_document_the_exit_codes() {
    metricsctl()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(contains("3 UNKNOWN"));
    metricsctl()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(contains("metricsctl"));
    metricsctl()
        .args(["migrate", "--help"])
        .assert()
        .code(0)
        .stdout(contains("--dry-run"))
        .stdout(contains("--lock-timeout"));
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        metricsctl()
            .args(["completions", shell])
            .assert()
            .code(0)
            .stdout(contains("metricsctl"))
            .stdout(contains("migrate"));
    }
}
