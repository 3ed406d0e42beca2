//! The command line itself: the exit-code convention (a test per row), help, completions.

use predicates::prelude::PredicateBooleanExt;
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
    // The database's own words, and the migration it stopped in.
    db.metricsctl(&["migrate"])
        .assert()
        .code(2)
        .stderr(contains("rolled back"))
        .stderr(contains("V2__create_metrics.sql failed"))
        .stderr(contains("ERROR 42703: column \"sensor_id\" does not exist"))
        .stderr(contains("db error").not());
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

/// Every command and subcommand, as typed.
fn every_command() -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, path: &[String], out: &mut Vec<Vec<String>>) {
        for sub in command.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let mut path = path.to_vec();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(
        &<metricsctl::cli::Cli as clap::CommandFactory>::command(),
        &[],
        &mut out,
    );
    out
}

#[test]
fn every_commands_help_shows_one_to_three_examples() {
    let commands = every_command();
    assert!(commands.len() >= 18, "{commands:?}");
    for command in commands {
        let output = metricsctl().args(&command).arg("--help").output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        let help = String::from_utf8_lossy(&output.stdout).into_owned();
        let examples: Vec<&str> = help
            .split("Examples:")
            .nth(1)
            .unwrap_or_else(|| panic!("{command:?} has no examples:\n{help}"))
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .collect();
        assert!(
            (1..=3).contains(&examples.len()),
            "{command:?}: {examples:?}"
        );
        for example in examples {
            assert!(example.contains("metricsctl "), "{command:?}: {example}");
        }
    }
}

#[test]
fn the_top_level_help_names_the_configuration_sources_and_the_exit_codes() {
    let output = metricsctl().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    for needle in [
        "--database-url",
        "DATABASE_URL",
        "DB_HOST",
        "PGHOST",
        "PGPASSWORD",
        "~/.pgpass",
        "postgresql://metrics:metrics@localhost:5432/metrics",
        "0 OK",
        "1 WARNING",
        "2 CRITICAL",
        "3 UNKNOWN",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[test]
fn a_report_that_cannot_be_written_is_an_error_and_a_closed_pipe_is_not() {
    let full = || {
        std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let db = TestDatabase::new();
    db.migrate();
    for command in [
        &["completions", "bash"][..],
        &["generate", "1000"],
        &["migrate", "status", "--format", "json"],
        &["lag", "--format", "prometheus"],
        &["check", "--format", "nagios"],
    ] {
        let output = crate::support::metricsctl_process()
            .args(command)
            .args(["--database-url", &db.url])
            .stdout(full())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(3), "{command:?}: {stderr}");
        assert!(
            stderr.contains("No space left on device"),
            "{command:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{command:?}: {stderr}");
    }
    // `metricsctl ... | head`: the reader goes away; that is not an error.
    for command in [&["generate", "200000"][..], &["completions", "zsh"]] {
        let mut child = crate::support::metricsctl_process()
            .args(command)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        use std::io::Read as _;
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{command:?}: {stderr}");
        assert!(stderr.is_empty(), "{command:?}: {stderr}");
    }
}

#[test]
fn quiet_makes_a_successful_cron_run_print_nothing() {
    let db = TestDatabase::new();
    let silent = |args: &[&str]| {
        db.metricsctl(args)
            .arg("-q")
            .assert()
            .code(0)
            .stdout("")
            .stderr("");
    };
    silent(&["migrate"]);
    silent(&["migrate"]);
    silent(&["migrate", "status"]);
    silent(&["check"]);
    silent(&["partitions", "enable"]);
    silent(&["partitions", "create", "--months", "3"]);
    silent(&["partitions", "list"]);
    silent(&["partitions", "drop", "--older-than", "12"]);
    silent(&["check", "partitions"]);
    silent(&["rate"]);
    // A format asked for is still written.
    db.metricsctl(&["check", "partitions", "--format", "nagios", "-q"])
        .assert()
        .code(0)
        .stdout(contains("METRICSCTL PARTITIONS OK"));
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    crate::support::generate_events(&events, 100, 3, 1, "jsonl");
    silent(&["replay", events.to_str().unwrap()]);
    // A problem is still shown.
    db.client()
        .batch_execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES ('s', 'x', now(), 1)",
        )
        .unwrap();
    db.metricsctl(&["check", "-q"])
        .assert()
        .code(1)
        .stdout(contains("WARNING"));
}

#[test]
fn csv_carries_raw_values() {
    let db = TestDatabase::new();
    db.migrate_as(crate::support::Layout::Partitioned);
    crate::checks::insert_recent(&db, "s1", 30, 1);
    let csv_of = |args: &[&str]| -> Vec<csv::StringRecord> {
        let output = db
            .metricsctl(args)
            .args(["--format", "csv"])
            .output()
            .unwrap();
        let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
        let mut rows = vec![reader.headers().unwrap().clone()];
        rows.extend(reader.records().map(Result::unwrap));
        rows
    };
    let rate = csv_of(&["rate", "--minutes", "5"]);
    assert_eq!(
        rate[0].iter().collect::<Vec<_>>(),
        vec!["bucket_start", "events"]
    );
    for row in &rate[1..] {
        chrono::DateTime::parse_from_rfc3339(&row[0]).unwrap();
        row[1].parse::<i64>().unwrap();
    }
    let lag = csv_of(&["lag"]);
    let lag_seconds = lag.iter().find(|r| &r[0] == "lag_seconds").unwrap();
    lag_seconds[1].parse::<f64>().unwrap();
    let partitions = csv_of(&["check", "partitions"]);
    assert_eq!(
        partitions[0].iter().collect::<Vec<_>>(),
        vec!["partition", "from", "to", "rows", "bytes"]
    );
    for row in &partitions[1..] {
        row[4].parse::<i64>().unwrap();
    }
    let status = csv_of(&["migrate", "status"]);
    assert_eq!(&status[1][2], "applied");
    for text in [&rate, &lag, &partitions, &status]
        .iter()
        .flat_map(|rows| rows.iter())
        .flat_map(|r| r.iter().map(str::to_string).collect::<Vec<_>>())
    {
        assert!(
            !text.contains(['█', '▏', '~']) && !text.ends_with(" s") && !text.contains("UTC"),
            "a display string in CSV: {text:?}"
        );
    }
}

#[test]
fn the_readme_says_how_to_install_and_how_to_configure() {
    // The README, and the monitoring page it links for the Nagios range syntax.
    let readme = ["/README.md", "/docs/monitoring.md"]
        .map(|page| {
            std::fs::read_to_string(format!("{}{page}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        })
        .join("\n");
    for needle in [
        "cargo install --path .",
        "PGPASSFILE",
        "~/.pgpass",
        "PGHOST",
        "migrate repair",
        "10:",
    ] {
        assert!(
            readme.contains(needle),
            "the README does not mention {needle}"
        );
    }
}

/// The one list of checks and the command line agree: each check has the command its
/// `Check::command` names, and each subcommand of `check` (but `all`) is a check's.
#[test]
fn every_check_has_its_command_and_every_check_command_is_a_check() {
    use metricsctl::Check;
    let root = <metricsctl::cli::Cli as clap::CommandFactory>::command();
    for check in Check::iter() {
        let mut command = &root;
        for name in check.command() {
            command = command.find_subcommand(name).unwrap_or_else(|| {
                panic!(
                    "{:?} names `{}`, which has no `{name}`",
                    check,
                    check.command().join(" ")
                )
            });
        }
        metricsctl()
            .args(check.command())
            .arg("--help")
            .assert()
            .code(0);
    }
    let check_command = root.find_subcommand("check").unwrap();
    for sub in check_command.get_subcommands() {
        let name = sub.get_name();
        if matches!(name, "all" | "help") {
            continue;
        }
        assert!(
            Check::iter().any(|check| check.command() == ["check", name]),
            "`check {name}` is not a Check variant's command"
        );
    }
}
