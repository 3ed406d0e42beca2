//! The distributed layout on a real Citus cluster (a coordinator and two workers the harness
//! starts): `migrate --distributed`, `distribute` converting a populated database while a replay
//! writes, killed and rerun, the Citus-only query files in psql, and `demo --distributed`. The
//! replay, check, lag, rate and repair tests that run on every layout run here too
//! (`on_every_layout!`). Where Citus is not installed, each says NOT RUN.

use std::time::Duration;

use crate::support::citus::{citus_available, enter_distributed};
use crate::support::{
    Layout, TestDatabase, assert_exactly_once, generate_events, pg_tool, stderr_of, stdout_of,
    wait_until,
};

/// A database on the Citus cluster, or `None` (NOT RUN) where Citus is not installed.
fn citus_database(test: &str) -> Option<TestDatabase> {
    enter_distributed(test).then(TestDatabase::new)
}

/// How Citus distributes each of the guide's tables: (table, column, colocation id).
fn distribution(db: &TestDatabase) -> Vec<(String, String, i32)> {
    db.client()
        .query(
            "SELECT logicalrelid::regclass::text, column_to_column_name(logicalrelid, partkey), \
             colocationid FROM pg_dist_partition \
             WHERE logicalrelid IN ('processed_events'::regclass, 'metrics'::regclass) \
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

/// Every constraint and index name of the guide's tables, with metrics_pkey's columns apart.
fn names_and_key(db: &TestDatabase) -> (Vec<String>, Vec<String>) {
    let mut client = db.client();
    let names = client
        .query(
            "SELECT conname::text FROM pg_constraint \
             WHERE conrelid IN ('processed_events'::regclass, 'metrics'::regclass) \
             UNION SELECT indexrelid::regclass::text FROM pg_index \
             WHERE indrelid IN ('processed_events'::regclass, 'metrics'::regclass) ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let key = client
        .query(
            "SELECT a.attname::text FROM pg_constraint c, unnest(c.conkey) WITH ORDINALITY k(n, o) \
             JOIN pg_attribute a ON a.attnum = k.n \
             WHERE c.conname = 'metrics_pkey' AND c.conrelid = 'metrics'::regclass \
               AND a.attrelid = c.conrelid ORDER BY k.o",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    (names, key)
}

fn migrate_distributed_builds_the_guides_tables_distributed_and_colocated(layout: Layout) {
    let test =
        "distributed::migrate_distributed_builds_the_guides_tables_distributed_and_colocated";
    let Some(db) = citus_database(test) else {
        return;
    };
    db.migrate_as(layout);
    let tables = distribution(&db);
    assert_eq!(tables.len(), 2, "{tables:?}");
    assert!(
        tables.iter().all(|(_, column, _)| column == "event_id"),
        "{tables:?}"
    );
    assert_eq!(tables[0].2, tables[1].2, "colocated: {tables:?}");
    let (names, key) = names_and_key(&db);
    let expected_key = match layout {
        Layout::Plain => vec!["id", "event_id"],
        Layout::Partitioned => vec!["id", "event_id", "timestamp"],
    };
    assert_eq!(key, expected_key);
    // Every other name is the guide's: the same as a single server's.
    let single = TestDatabase::on_server(&crate::support::shared_server_url());
    single.migrate_as(layout);
    assert_eq!(names, names_and_key(&single).0);
    // The read commands of the schema answer as on one server.
    let status = crate::support::json_of(&db, &["migrate", "status"], 0);
    let states: Vec<&str> = status["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["applied", "applied"], "{status}");
    if layout == Layout::Partitioned {
        let listed = db
            .metricsctl(&["partitions", "list", "--exact", "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(listed.status.code(), Some(0), "{}", stderr_of(&listed));
        let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        let single_listed: serde_json::Value = serde_json::from_slice(
            &single
                .metricsctl(&["partitions", "list", "--exact", "--format", "json"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert_eq!(listed["partitions"], single_listed["partitions"]);
        crate::support::json_of(&db, &["check", "partitions"], 0);
    }
    // Again: nothing to do.
    let output = db
        .metricsctl(&["migrate", "--distributed"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("nothing to do"),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(distribution(&db), tables);
}

crate::on_both_layouts!(migrate_distributed_builds_the_guides_tables_distributed_and_colocated);

/// `migrate --distributed` is refused, saying why, and its transaction leaves nothing behind.
fn migrate_distributed_is_refused(db: &TestDatabase, reason: &str) {
    let output = db
        .metricsctl(&["migrate", "--distributed"])
        .output()
        .unwrap();
    let said = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{said}");
    assert!(said.contains(reason), "{reason:?} not in: {said}");
    for table in ["metrics", "processed_events"] {
        assert!(!db.relation_exists(table), "the migration was rolled back");
    }
}

#[test]
fn migrate_distributed_refuses_a_server_without_citus_and_changes_nothing() {
    migrate_distributed_is_refused(&TestDatabase::new(), "the citus extension is not created");
}

#[test]
fn migrate_distributed_refuses_a_coordinator_without_workers() {
    let test = "distributed::migrate_distributed_refuses_a_coordinator_without_workers";
    let Some(db) = citus_database(test) else {
        return;
    };
    db.client()
        .batch_execute(
            "SELECT citus_remove_node(nodename, nodeport) FROM pg_dist_node WHERE groupid <> 0",
        )
        .unwrap();
    migrate_distributed_is_refused(&db, "no active workers");
}

/// A single-node schema on the coordinator, holding `count` events.
fn populated_single_node(db: &TestDatabase, layout: Layout, dir: &std::path::Path, count: u64) {
    match layout {
        Layout::Plain => db.metricsctl(&["migrate"]).assert().code(0),
        Layout::Partitioned => db
            .metricsctl(&["migrate", "--partitioned"])
            .assert()
            .code(0),
    };
    let first = dir.join("first.jsonl");
    generate_events(&first, count, 20, 1, "jsonl");
    db.replay(&["--jobs", "2"], &[&first]);
    assert!(distribution(db).is_empty());
}

fn distribute_converts_a_populated_database_while_a_replay_writes(layout: Layout) {
    let test = "distributed::distribute_converts_a_populated_database_while_a_replay_writes";
    let Some(db) = citus_database(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    populated_single_node(&db, layout, dir.path(), 20_000);
    let status = db.metricsctl(&["distribute", "--status"]).output().unwrap();
    assert_eq!(
        status.status.code(),
        Some(1),
        "half done or not started is a WARNING"
    );
    assert!(stderr_of(&status).contains("left to do: key, processed_events, metrics"));

    let second = dir.path().join("second.jsonl");
    generate_events(&second, 30_000, 20, 2, "jsonl");
    let writer = crate::support::metricsctl_process()
        .args([
            "replay",
            "--batch-size",
            "200",
            "--jobs",
            "2",
            "--database-url",
            &db.url,
        ])
        .arg(&second)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::support::wait_until_writing(&db);
    let output = db.metricsctl(&["distribute"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let replayed = writer.wait_with_output().unwrap();
    assert_eq!(replayed.status.code(), Some(0), "{}", stderr_of(&replayed));

    assert_eq!(distribution(&db).len(), 2);
    assert_exactly_once(&db, 50_000);
    // (`check` as a whole also judges the partitions: the generated months are not all made.)
    db.metricsctl(&["check", "duplicates"]).assert().code(0);
    db.metricsctl(&["check", "sequence"]).assert().code(0);
    db.metricsctl(&["distribute", "--status"]).assert().code(0);
    // Nothing left: a rerun says so and changes nothing.
    let again = db.metricsctl(&["distribute"]).output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr_of(&again));
    assert!(
        !stderr_of(&again).contains("distribute: "),
        "{}",
        stderr_of(&again)
    );
}

crate::on_both_layouts!(distribute_converts_a_populated_database_while_a_replay_writes);

#[test]
fn a_killed_distribute_leaves_the_tables_whole_and_a_rerun_finishes() {
    let test = "distributed::a_killed_distribute_leaves_the_tables_whole_and_a_rerun_finishes";
    let Some(db) = citus_database(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    populated_single_node(&db, Layout::Plain, dir.path(), 30_000);
    // Killed at a different moment each time: during the key's index, the swap, or a copy.
    for delay_ms in [50u64, 400, 1500] {
        let mut run = crate::support::metricsctl_process()
            .args(["distribute", "--database-url", &db.url])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = run.kill();
        let _ = run.wait();
        // The server finishes or abandons what the killed run asked (Citus' own sessions stay).
        wait_until("the killed run's statements to end", || {
            db.count(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name LIKE 'metricsctl%' AND pid <> pg_backend_pid()",
            ) == 0
        });
        // Whatever the moment, every event is there once. (Counted table by table: between the
        // steps one table may be distributed and the other not, which Citus does not join.)
        for table in ["processed_events", "metrics"] {
            let (rows, distinct): (i64, i64) = {
                let row = db
                    .client()
                    .query_one(
                        &format!("SELECT count(*), count(DISTINCT event_id) FROM {table}"),
                        &[],
                    )
                    .unwrap();
                (row.get(0), row.get(1))
            };
            assert_eq!(
                (rows, distinct),
                (30_000, 30_000),
                "{table} after a kill at {delay_ms} ms"
            );
        }
    }
    let output = db.metricsctl(&["distribute"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(distribution(&db).len(), 2);
    assert_exactly_once(&db, 30_000);
    db.metricsctl(&["check"]).assert().code(0);
}

#[test]
fn distribute_refuses_a_server_without_citus_and_its_dry_run_changes_nothing() {
    let test =
        "distributed::distribute_refuses_a_server_without_citus_and_its_dry_run_changes_nothing";
    let Some(db) = citus_database(test) else {
        return;
    };
    db.metricsctl(&["migrate"]).assert().code(0);
    // A server without the extension is refused before anything else.
    let plain = TestDatabase::on_server(&crate::support::shared_server_url());
    plain.migrate();
    let output = plain.metricsctl(&["distribute"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr_of(&output).contains("Citus coordinator"),
        "{}",
        stderr_of(&output)
    );
    let dry = db
        .metricsctl(&["distribute", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0), "{}", stderr_of(&dry));
    let plan = stdout_of(&dry);
    for expected in [
        "CREATE UNIQUE INDEX CONCURRENTLY",
        "PRIMARY KEY USING INDEX metrics_distribution_key",
        "create_distributed_table(\n    CAST('\"public\".\"processed_events\"'",
        "colocate_with => CAST('\"public\".\"processed_events\"' AS text)",
    ] {
        assert!(
            plan.contains(expected),
            "{expected} not in the plan:\n{plan}"
        );
    }
    assert!(distribution(&db).is_empty(), "a dry run changes nothing");
    let (_, key) = names_and_key(&db);
    assert_eq!(key, ["id"], "a dry run changes nothing");
}

/// The Citus-only query files run in psql as they are, in the order `queries::distributed()`
/// gives, on a coordinator with the single-node schema.
#[test]
fn the_distributed_query_files_run_in_psql() {
    let test = "distributed::the_distributed_query_files_run_in_psql";
    let Some(db) = citus_database(test) else {
        return;
    };
    db.metricsctl(&["migrate"]).assert().code(0);
    let port: String = db.scalar("SELECT current_setting('port')");
    // distribute_table.sql twice: the guard first, then metrics colocated with it.
    let runs = metricsctl::db::queries::distributed()
        .into_iter()
        .flat_map(|query| match query.file {
            "distribute_table.sql" => vec![
                (query, "public.processed_events", "none"),
                (query, "public.metrics", "public.processed_events"),
            ],
            "retired_events_reference.sql" => {
                vec![(query, "public.metricsctl_retired_events", "")]
            }
            _ => vec![(query, "", "")],
        });
    for (query, relation, colocate_with) in runs {
        let mut psql = std::process::Command::new(pg_tool("psql"));
        psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "schema=public"])
            .arg(format!("--dbname={}", db.url));
        for param in query.params {
            let value = match *param {
                "relation" => relation,
                "colocate_with" => colocate_with,
                "host" => "127.0.0.1",
                "port" => &port,
                "schema" => "public",
                "stale_seconds" => "900",
                "window_seconds" => "3600",
                "latency_sample" => "1000",
                "limit" => "10",
                "clock_tolerance_seconds" => "60",
                other => panic!("{}: no value for :'{other}'", query.file),
            };
            psql.arg("-v").arg(format!("{param}={value}"));
        }
        if query.file == "retired_events_reference.sql" {
            // The table it turns into a reference table, as partitions drop makes it.
            psql.arg("-f").arg(format!(
                "{}/queries/retired_events_table.sql",
                env!("CARGO_MANIFEST_DIR")
            ));
        }
        psql.arg("-f").arg(format!(
            "{}/queries/{}",
            env!("CARGO_MANIFEST_DIR"),
            query.file
        ));
        let output = psql.output().unwrap();
        assert!(
            output.status.success(),
            "{} failed in psql: {}",
            query.file,
            stderr_of(&output)
        );
    }
    assert_eq!(
        distribution(&db).len(),
        2,
        "the files distributed both tables"
    );
}

#[test]
fn the_demo_runs_on_a_throwaway_citus_cluster() {
    if !citus_available("distributed::the_demo_runs_on_a_throwaway_citus_cluster") {
        return;
    }
    let output = crate::support::metricsctl()
        .args(["demo", "--distributed"])
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap();
    let said = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(
        said.contains("Distributed processed_events and metrics by event_id"),
        "{said}"
    );
    assert!(
        said.contains("Stopped and removed the throwaway Citus cluster"),
        "{said}"
    );
    assert!(!said.contains("→ exit 3"), "no step could not run: {said}");
}

/// Retention on the distributed layout: old months dropped, their events noted as retired in a
/// reference table the checks join with the shards, and a replay of the old dump stores nothing.
#[test]
fn retention_on_the_distributed_layout_keeps_retired_events_retired() {
    let test = "distributed::retention_on_the_distributed_layout_keeps_retired_events_retired";
    let Some(db) = citus_database(test) else {
        return;
    };
    db.metricsctl(&["migrate", "--distributed", "--partitioned"])
        .assert()
        .code(0);
    db.metricsctl(&["partitions", "create", "--from", "2024-01", "--months", "2"])
        .assert()
        .code(0);
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.jsonl");
    let lines: Vec<String> = (0..40)
        .map(|i| {
            crate::support::event_line(
                &format!("old-{i:02}"),
                &format!("s{}", i % 4),
                &format!("2024-01-{:02}T00:00:00Z", i % 28 + 1),
                f64::from(i),
            )
        })
        .collect();
    crate::support::write_lines(&old, &lines);
    assert_eq!(db.replay(&[], &[&old]).0, 0);
    db.metricsctl(&["partitions", "drop", "--older-than", "12"])
        .assert()
        .code(0);
    let kind: String = db.scalar(
        "SELECT partmethod::text FROM pg_dist_partition \
         WHERE logicalrelid = 'metricsctl_retired_events'::regclass",
    );
    assert_eq!(kind, "n", "a reference table");
    let report = crate::support::json_of(&db, &["check", "duplicates"], 0);
    assert_eq!(report["retired_events"], 40, "{report}");
    assert_eq!(report["lost_metrics"], 0, "{report}");
    let (code, summary) = db.replay(&[], &[&old]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(
        summary["inserted"], 0,
        "retired events stay retired: {summary}"
    );
    assert_eq!(db.count("SELECT count(*) FROM metrics"), 0);
}

#[test]
fn partitions_enable_on_a_distributed_plain_table_is_refused_before_anything_changes() {
    let test = "distributed::partitions_enable_on_a_distributed_plain_table_is_refused_before_anything_changes";
    let Some(db) = citus_database(test) else {
        return;
    };
    db.migrate();
    for args in [
        &["partitions", "enable"][..],
        &["partitions", "enable", "--dry-run"],
    ] {
        let output = db.metricsctl(args).output().unwrap();
        assert_eq!(output.status.code(), Some(3), "{args:?}");
        assert!(
            stderr_of(&output).contains("metrics is distributed by Citus"),
            "{}",
            stderr_of(&output)
        );
    }
    assert!(
        !db.relation_exists("metricsctl_conversion"),
        "nothing was changed"
    );
    assert_eq!(distribution(&db).len(), 2);
}

/// A guide's table Citus distributes by another column is named, for distribute as for
/// migrate --distributed: its guard rows and metrics would not share shards.
#[test]
fn a_table_distributed_by_another_column_is_refused_by_both() {
    let test = "distributed::a_table_distributed_by_another_column_is_refused_by_both";
    let Some(db) = citus_database(test) else {
        return;
    };
    db.metricsctl(&["migrate"]).assert().code(0);
    db.client()
        .batch_execute(
            "ALTER TABLE processed_events DROP CONSTRAINT processed_events_pkey; \
             SELECT create_distributed_table('processed_events', 'sensor_id')",
        )
        .unwrap();
    for args in [
        &["distribute"][..],
        &["distribute", "--status"],
        &["migrate", "--distributed"],
    ] {
        let output = db.metricsctl(args).output().unwrap();
        assert_eq!(output.status.code(), Some(3), "{args:?}");
        assert!(
            stderr_of(&output).contains("is distributed by sensor_id, not by event_id"),
            "{args:?}: {}",
            stderr_of(&output)
        );
    }
    assert_eq!(distribution(&db).len(), 1, "nothing else was distributed");
}
