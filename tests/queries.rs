//! The SQL files in queries/ run as they are in psql, and the compiled-in copies match them.

use crate::support::{TestDatabase, pg_tool, stderr_of};

#[test]
fn every_query_file_runs_in_psql_with_its_variables() {
    let db = TestDatabase::new();
    db.migrate();
    for query in metricsctl::db::queries::all() {
        let mut psql = std::process::Command::new(pg_tool("psql"));
        psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "schema=public"])
            .args(["-v", "retired_events=metricsctl_retired_events"])
            .arg(format!("--dbname={}", db.url));
        if matches!(
            query.file,
            "ingest_batch_dry_run.sql" | "ingest_lock.sql" | "ingest_dry_run_lock.sql"
        ) {
            // Its temporary table lasts for the dry run's transaction, and LOCK TABLE runs in
            // one, as the files say.
            psql.arg("--single-transaction");
        }
        for first in files_run_first(query.file) {
            psql.arg("-f")
                .arg(format!("{}/queries/{first}", env!("CARGO_MANIFEST_DIR")));
        }
        psql.arg("-f").arg(format!(
            "{}/queries/{}",
            env!("CARGO_MANIFEST_DIR"),
            query.file
        ));
        for param in query.params {
            psql.arg("-v")
                .arg(format!("{param}={}", psql_value(query.file, param)));
        }
        let output = psql.output().expect("running psql");
        assert!(
            output.status.success(),
            "{} failed in psql: {}",
            query.file,
            stderr_of(&output)
        );
    }
}

/// Files that read a table another file makes: that file first, as their headers say.
fn files_run_first(file: &str) -> &'static [&'static str] {
    match file {
        "ingest_batch_dry_run.sql" => &["ingest_dry_run_setup.sql", "retired_events_table.sql"],
        "duplicates.sql"
        | "duplicates_since_unfound.sql"
        | "ingest_batch_repair.sql"
        | "lost_metrics.sql"
        | "repair_release_lost.sql" => &["retired_events_table.sql"],
        _ => &[],
    }
}

/// A value for the psql variable `param` of `file` that the statement accepts.
fn psql_value(file: &str, param: &str) -> &'static str {
    match param {
        "lock_key" => "7882834757525140225",
        "milliseconds" => "1000",
        "relation" => "metrics",
        "event_ids" => "{psql-e1}",
        "sensor_ids" => "{s1}",
        "timestamps" => "{2026-01-01T00:00:00Z}",
        "values" => "{21.5}",
        "kafka_partitions" => "{0}",
        "kafka_offsets" => "{42}",
        "delivery_order" => "{1}",
        "stale_seconds" => "900",
        "before" => "2025-01-01",
        "table_name" => "metrics",
        "lost" => "psql-e1",
        "bypassed" => "psql-e2",
        "constraint_name" => "metrics_event_id_key",
        "month" => "2025-01-01",
        "window_seconds" => "3600",
        "latency_sample" => "1000",
        "limit" => "10",
        "since" | "ingested_since" | "looked_back" => "-infinity",
        "clock_tolerance_seconds" => "60",
        "version" => "99",
        "applied_on" => "2026-01-01T00:00:00Z",
        "checksum" | "old_checksum" | "new_checksum" => "1",
        "unit" => "minute",
        "step_seconds" => "60",
        "buckets" => "60",
        "pids" => "{1}",
        "transaction_starts" => "{0}",
        "pin_search_path" => "on",
        "search_path" => "pg_catalog, public, pg_temp",
        "bound_statements" => "off",
        "statement_timeout" => "0",
        "token" => "probe",
        "wal_lsn" => "0/0",
        "sensor_id" => "sensor_123",
        "schema" => "public",
        "name" => "create_x",
        "roles" => "{postgres}",
        "role" => "postgres",
        "primary" => "true",
        "columns" => "{event_id}",
        other => panic!("{file}: no psql value for :'{other}' in this test"),
    }
}

#[test]
fn compiled_queries_are_the_files_on_disk() {
    let queries = metricsctl::db::queries::all()
        .into_iter()
        .chain(metricsctl::db::queries::maintenance())
        .chain(metricsctl::db::queries::distributed());
    for query in queries {
        let on_disk = std::fs::read_to_string(format!(
            "{}/queries/{}",
            env!("CARGO_MANIFEST_DIR"),
            query.file
        ))
        .unwrap();
        assert_eq!(query.psql_text, on_disk, "{}", query.file);
    }
}

/// Values from the command line reach the SQL as bind parameters: a hostile sensor id is just a
/// sensor id, found among the others and never run.
#[test]
fn a_sensor_id_goes_in_as_a_bind_parameter_never_as_sql() {
    let db = TestDatabase::new();
    db.migrate();
    let hostile = "x'; DROP TABLE metrics; --";
    db.client()
        .execute(
            "INSERT INTO metrics (sensor_id, event_id, timestamp, value) VALUES \
             ($1, 'e1', '2026-01-01T00:00:01Z', 1), ($1, 'e2', '2026-01-01T00:00:00Z', 2)",
            &[&hostile],
        )
        .unwrap();
    let output = db
        .metricsctl(&["check", "ordering", "--format", "json", "--sensor", hostile])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["sensor"], hostile, "{report}");
    assert_eq!(report["events_checked"], 2, "{report}");
    assert!(db.relation_exists("metrics"));
}

#[test]
fn every_file_in_queries_is_compiled_in() {
    let compiled: std::collections::BTreeSet<&str> = metricsctl::db::queries::all()
        .into_iter()
        .chain(metricsctl::db::queries::maintenance())
        .chain(metricsctl::db::queries::distributed())
        .map(|q| q.file)
        .collect();
    let on_disk: std::collections::BTreeSet<String> =
        std::fs::read_dir(format!("{}/queries", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    for file in &on_disk {
        assert!(
            compiled.contains(file.as_str()),
            "queries/{file} is not used by metricsctl"
        );
    }
}
