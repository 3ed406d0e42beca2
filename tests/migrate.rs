//! `migrate`, `migrate status` and `migrate --dry-run` against a real PostgreSQL.

use std::process::Stdio;
use std::time::{Duration, Instant};

use predicates::str::contains;
use serde_json::Value;

use crate::support::{
    LockHolder, TestDatabase, metricsctl_process, schema_dump, stderr_of, wait_until,
};

const SEED_INIT_SQL: &str = include_str!("fixtures/seed_init.sql");

#[test]
fn migrate_builds_exactly_the_seeds_schema() {
    let migrated = TestDatabase::new();
    migrated.migrate();
    let seeded = TestDatabase::new();
    seeded.client().batch_execute(SEED_INIT_SQL).unwrap();

    let ours = schema_dump(&migrated);
    let seed = schema_dump(&seeded);
    assert!(ours.contains("CREATE TABLE public.metrics"), "{ours}");
    assert!(ours.contains("idx_metrics_sensor_timestamp"), "{ours}");
    assert_eq!(
        ours, seed,
        "the migrated schema differs from the seed's init.sql"
    );
}

#[test]
fn migrate_adopts_a_database_built_by_the_seeds_init_sql() {
    let db = TestDatabase::new();
    db.client().batch_execute(SEED_INIT_SQL).unwrap();
    let before = schema_dump(&db);
    db.metricsctl(&["migrate"]).assert().code(0);
    assert_eq!(schema_dump(&db), before);
    assert_eq!(db.count("SELECT count(*) FROM refinery_schema_history"), 2);
}

#[test]
fn a_rerun_says_the_schema_is_up_to_date_and_exits_0() {
    let db = TestDatabase::new();
    db.metricsctl(&["migrate"])
        .assert()
        .code(0)
        .stdout(contains("create_metrics"))
        .stderr(contains("Applied 2 migration(s)"));
    db.metricsctl(&["migrate"])
        .assert()
        .code(0)
        .stdout("")
        .stderr(contains("up to date at version 2"));
    assert_eq!(db.count("SELECT count(*) FROM refinery_schema_history"), 2);
}

#[test]
fn concurrent_migrates_all_succeed_and_apply_the_schema_once() {
    let db = TestDatabase::new();
    let replicas: Vec<_> = (0..6)
        .map(|_| {
            metricsctl_process()
                .args(["migrate", "--format", "json", "--database-url", &db.url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied_counts = Vec::new();
    for replica in replicas {
        let output = replica.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        applied_counts.push(report["applied"].as_array().unwrap().len());
    }
    applied_counts.sort();
    assert_eq!(
        applied_counts,
        vec![0, 0, 0, 0, 0, 2],
        "exactly one replica applies"
    );
    assert_eq!(db.count("SELECT count(*) FROM refinery_schema_history"), 2);
}

#[test]
fn a_second_migrate_waits_for_the_lock_then_finds_nothing_to_do() {
    let db = TestDatabase::new();
    db.migrate();
    let mut holder = LockHolder::advisory(
        &db,
        "deploy-replica-7",
        metricsctl::schema::migrations::MIGRATION_LOCK_KEY,
    );
    let holder_pid = holder.pid();

    let waiting = metricsctl_process()
        .args([
            "migrate",
            "--lock-timeout",
            "30s",
            "--database-url",
            &db.url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Release only once it has tried the lock and been told who holds it (the holder query has
    // finished: its session is idle after it).
    let mut observer = db.client();
    wait_until("the second migrate to meet the lock", || {
        observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = 'metricsctl' AND pid <> pg_backend_pid() \
                 AND state IN ('idle', 'idle in transaction') AND query LIKE '%pg_locks%'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            > 0
    });
    let released_at = Instant::now();
    holder.release();
    let output = waiting.wait_with_output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("pid {holder_pid}")), "{stderr}");
    assert!(stderr.contains("deploy-replica-7"), "{stderr}");
    assert!(stderr.contains("up to date"), "{stderr}");
    assert!(released_at.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_lock_timeout_names_the_holder_and_exits_3() {
    let db = TestDatabase::new();
    let mut holder = LockHolder::advisory(
        &db,
        "stuck-deploy",
        metricsctl::schema::migrations::MIGRATION_LOCK_KEY,
    );
    let holder_pid = holder.pid();

    let started = Instant::now();
    db.metricsctl(&["migrate", "--lock-timeout", "1s"])
        .assert()
        .code(3)
        .stderr(contains(format!("pid {holder_pid}")))
        .stderr(contains("stuck-deploy"))
        .stderr(contains("--lock-timeout"));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!db.relation_exists("metrics"), "nothing may be applied");
}

#[test]
fn a_changed_migration_is_refused_with_its_version_named() {
    let db = TestDatabase::new();
    db.migrate();
    db.client()
        .execute(
            "UPDATE refinery_schema_history SET checksum = '12345' WHERE version = 1",
            &[],
        )
        .unwrap();
    db.metricsctl(&["migrate"])
        .assert()
        .code(2)
        .stderr(contains("V1__create_processed_events"))
        .stderr(contains("differs"));
    let status = db
        .metricsctl(&["migrate", "status", "--format", "json"])
        .assert()
        .code(2);
    let report: Value = serde_json::from_slice(&status.get_output().stdout).unwrap();
    assert_eq!(report["migrations"][0]["state"], "changed");
    assert_eq!(report["migrations"][1]["state"], "applied");
}

#[test]
fn an_applied_migration_unknown_to_this_binary_is_refused() {
    let db = TestDatabase::new();
    db.migrate();
    db.client()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (99, 'from_the_future', '2026-01-01T00:00:00Z', '1')",
            &[],
        )
        .unwrap();
    db.metricsctl(&["migrate"])
        .assert()
        .code(2)
        .stderr(contains("V99__from_the_future"))
        .stderr(contains("unknown to this binary"));
    db.metricsctl(&["migrate", "status"])
        .assert()
        .code(2)
        .stdout(contains("applied but unknown to this binary"));
}

#[test]
fn dry_run_prints_the_sql_and_changes_nothing() {
    let db = TestDatabase::new();
    db.metricsctl(&["migrate", "--dry-run"])
        .assert()
        .code(0)
        .stdout(contains("CREATE TABLE IF NOT EXISTS processed_events"))
        .stdout(contains(
            "CREATE INDEX IF NOT EXISTS idx_metrics_sensor_timestamp",
        ))
        .stderr(contains("nothing was changed"));
    for relation in ["processed_events", "metrics", "refinery_schema_history"] {
        assert!(
            !db.relation_exists(relation),
            "{relation} was created by a dry run"
        );
    }

    db.migrate();
    db.metricsctl(&["migrate", "--dry-run", "--format", "json"])
        .assert()
        .code(0)
        .stdout(contains("\"pending\": []"));
}

#[test]
fn status_shows_pending_then_applied_as_table_and_json() {
    let db = TestDatabase::new();
    let pending = db
        .metricsctl(&["migrate", "status", "--format", "json"])
        .assert()
        .code(1);
    let report: Value = serde_json::from_slice(&pending.get_output().stdout).unwrap();
    let states: Vec<&str> = report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["pending", "pending"]);
    db.metricsctl(&["migrate", "status"])
        .assert()
        .code(1)
        .stdout(contains("pending"))
        .stdout(contains("create_processed_events"));
    assert!(
        !db.relation_exists("refinery_schema_history"),
        "status must not write"
    );

    db.migrate();
    let applied = db
        .metricsctl(&["migrate", "status", "--format", "json"])
        .assert()
        .code(0);
    let report: Value = serde_json::from_slice(&applied.get_output().stdout).unwrap();
    for migration in report["migrations"].as_array().unwrap() {
        assert_eq!(migration["state"], "applied");
        assert!(migration["applied_on"].as_str().unwrap().starts_with("20"));
    }
    assert_eq!(report["migrations"][1]["version"], 2);
    assert_eq!(report["migrations"][1]["name"], "create_metrics");
    db.metricsctl(&["migrate", "status"])
        .assert()
        .code(0)
        .stdout(contains("applied"))
        .stdout(contains("create_metrics"));
}

#[test]
fn dry_run_partitioned_shows_the_partitioning_sql_and_changes_nothing() {
    let db = TestDatabase::new();
    let current: String = db.scalar(
        "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC'), '\"metrics_\"YYYY_MM')",
    );
    db.metricsctl(&["migrate", "--dry-run", "--partitioned"])
        .assert()
        .code(0)
        .stdout(contains("CREATE TABLE IF NOT EXISTS processed_events"))
        .stdout(contains("PARTITION BY RANGE (timestamp)"))
        .stdout(contains("metrics_default PARTITION OF metrics DEFAULT"))
        .stdout(contains(format!(
            "CREATE TABLE \"public\".\"{current}\" PARTITION OF metrics"
        )))
        .stderr(contains(
            "and the partitioning would run; nothing was changed",
        ));
    assert!(!db.relation_exists("metrics"));
    let json = db
        .metricsctl(&["migrate", "--dry-run", "--partitioned", "--format", "json"])
        .assert()
        .code(0);
    let report: Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    assert!(report["partitioning"].as_array().unwrap().len() > 5);

    // On a partitioned database only the missing months are left to do.
    db.metricsctl(&["migrate", "--partitioned"])
        .assert()
        .code(0);
    db.metricsctl(&["migrate", "--dry-run", "--partitioned"])
        .assert()
        .code(0)
        .stdout("")
        .stderr(contains("nothing would run"));
    // A plain table holding rows: the dry run says what the real run would refuse.
    let plain = TestDatabase::new();
    plain.migrate();
    plain
        .client()
        .batch_execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES ('s', 'e', now(), 1)",
        )
        .unwrap();
    plain
        .metricsctl(&["migrate", "--dry-run", "--partitioned"])
        .assert()
        .code(3)
        .stderr(contains("partitions enable"));
}

/// The checksum refinery recorded for a migration applied from a CRLF checkout (raw bytes).
fn crlf_checksum(file: &str, version: i32, name: &str) -> String {
    let sql = std::fs::read_to_string(format!("{}/migrations/{file}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace('\n', "\r\n");
    refinery::Migration::unapplied(&format!("V{version}__{name}"), &sql)
        .unwrap()
        .checksum()
        .to_string()
}

#[test]
fn a_database_migrated_from_a_crlf_checkout_is_repaired_not_refused_for_good() {
    let db = TestDatabase::new();
    db.migrate();
    let lf: String = db.scalar("SELECT checksum FROM refinery_schema_history WHERE version = 1");
    let crlf = crlf_checksum(
        "V1__create_processed_events.sql",
        1,
        "create_processed_events",
    );
    assert_ne!(lf, crlf);
    // As an older, raw-byte build on a Windows checkout would have recorded it.
    db.client()
        .execute(
            "UPDATE refinery_schema_history SET checksum = $1 WHERE version = 1",
            &[&crlf],
        )
        .unwrap();
    db.metricsctl(&["migrate"])
        .assert()
        .code(2)
        .stderr(contains("migrate repair"));
    db.metricsctl(&["migrate", "repair", "--dry-run"])
        .assert()
        .code(0)
        .stdout(contains(
            "V1__create_processed_events: the applied file had CRLF line endings",
        ))
        .stdout(contains("would be accepted"));
    assert_eq!(
        db.scalar::<String>("SELECT checksum FROM refinery_schema_history WHERE version = 1"),
        crlf,
        "a dry run changes nothing"
    );
    db.metricsctl(&["migrate", "repair"])
        .assert()
        .code(0)
        .stdout(contains(format!("recorded checksum {crlf} → {lf}")));
    assert_eq!(
        db.scalar::<String>("SELECT checksum FROM refinery_schema_history WHERE version = 1"),
        lf
    );
    db.metricsctl(&["migrate", "status"]).assert().code(0);
    db.metricsctl(&["migrate"])
        .assert()
        .code(0)
        .stderr(contains("up to date"));
    db.metricsctl(&["migrate", "repair"])
        .assert()
        .code(0)
        .stderr(contains("nothing to repair"));
}

#[test]
fn repair_refuses_any_change_beyond_whitespace() {
    let db = TestDatabase::new();
    db.migrate();
    // The checksum of different SQL: a real edit of an applied migration.
    let edited =
        refinery::Migration::unapplied("V2__create_metrics", "CREATE TABLE metrics (id int);\n")
            .unwrap()
            .checksum()
            .to_string();
    db.client()
        .execute(
            "UPDATE refinery_schema_history SET checksum = $1 WHERE version = 2",
            &[&edited],
        )
        .unwrap();
    db.metricsctl(&["migrate", "repair"])
        .assert()
        .code(2)
        .stderr(contains("V2__create_metrics: not repaired"))
        .stderr(contains("more than whitespace"));
    assert_eq!(
        db.scalar::<String>("SELECT checksum FROM refinery_schema_history WHERE version = 2"),
        edited
    );
    db.metricsctl(&["migrate"]).assert().code(2);
}

mod refinery_itself {
    refinery::embed_migrations!("migrations");
}

#[test]
fn refinerys_own_runner_agrees_with_what_metricsctl_records() {
    // An LF file keeps refinery's checksum: refinery, reading metricsctl's history, finds
    // nothing divergent and nothing to do.
    let db = TestDatabase::new();
    db.migrate();
    let mut client = db.client();
    let report = refinery_itself::migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run(&mut client)
        .expect("refinery accepts metricsctl's history");
    assert!(report.applied_migrations().is_empty());
}

#[test]
fn sql_files_are_pinned_to_lf() {
    let root = env!("CARGO_MANIFEST_DIR");
    let attributes = std::fs::read_to_string(format!("{root}/.gitattributes")).unwrap();
    assert!(
        attributes.lines().any(|l| l.trim() == "*.sql text eol=lf"),
        "{attributes}"
    );
    for entry in std::fs::read_dir(format!("{root}/migrations")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.contains(&b'\r'),
            "{} has CR characters",
            path.display()
        );
    }
    if let Ok(output) = std::process::Command::new("git")
        .args([
            "check-attr",
            "eol",
            "migrations/V1__create_processed_events.sql",
        ])
        .current_dir(root)
        .output()
        && output.status.success()
        && !output.stdout.is_empty()
    {
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("eol: lf"),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn a_lock_held_in_another_database_of_the_server_is_not_named() {
    // Advisory locks belong to a database: the same key held in another database (another
    // metricsctl's) is not the one in the way, and naming it would send the operator after the
    // wrong session.
    let ours = TestDatabase::new();
    let theirs = TestDatabase::new();
    ours.migrate();
    let key = metricsctl::schema::migrations::MIGRATION_LOCK_KEY;
    let elsewhere = LockHolder::advisory(&theirs, "another-database", key);
    let mut here = LockHolder::advisory(&ours, "this-database", key);
    let here_pid = here.pid();
    let output = ours
        .metricsctl(&["migrate", "--lock-timeout", "1s"])
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&format!("pid {here_pid} ")), "{stderr}");
    assert!(stderr.contains("this-database"), "{stderr}");
    assert!(!stderr.contains("another-database"), "{stderr}");
    here.release();
    elsewhere.release();
}
