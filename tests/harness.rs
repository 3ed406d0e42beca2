//! The harness itself: one PostgreSQL installation for the server and the client tools, and
//! which missing tools CI treats as failures.

use metricsctl::db::sandbox::BINDIR_VARIABLE;

use crate::support::{
    TEST_DATABASE_URL_VARIABLE, TestDatabase, installation, pg_tool, server_version, stdout_of,
    tool_required,
};

/// "psql (PostgreSQL) 16.2" → "16.2"; "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" →
/// "15.18 (Debian 15.18-0+deb12u1)", as `SHOW server_version` says it.
fn version_of(tool: &str) -> String {
    let output = std::process::Command::new(pg_tool(tool))
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("running {} --version: {e}", pg_tool(tool).display()));
    assert!(output.status.success(), "{tool} --version: {output:?}");
    let said = stdout_of(&output);
    said.trim()
        .split_once("(PostgreSQL) ")
        .unwrap_or_else(|| panic!("{tool} --version said {said:?}"))
        .1
        .to_string()
}

#[test]
fn the_server_and_its_client_tools_come_from_one_installation() {
    let server = version_of("postgres");
    for tool in ["initdb", "pg_ctl", "psql", "pg_dump"] {
        assert_eq!(version_of(tool), server, "{tool} of {}", installation());
    }
    if let Some(dir) = std::env::var_os(BINDIR_VARIABLE).filter(|d| !d.is_empty()) {
        let dir = std::fs::canonicalize(dir).unwrap();
        for tool in ["postgres", "psql", "pg_dump"] {
            assert_eq!(pg_tool(tool), dir.join(tool));
        }
    }
    if std::env::var(TEST_DATABASE_URL_VARIABLE).is_err() {
        // The shared throwaway server runs that installation's postgres.
        let db = TestDatabase::new();
        assert_eq!(server_version(), server);
        assert_eq!(db.scalar::<String>("SHOW server_version"), server);
    }
}

#[test]
fn require_tools_names_every_tool_or_a_list_of_them() {
    for unset in [None, Some(""), Some("0")] {
        assert!(!tool_required("pg_partman", unset), "{unset:?}");
    }
    assert!(tool_required("pg_partman", Some("1")));
    let list = Some("promtool, Monitoring::Plugin");
    assert!(tool_required("promtool", list));
    assert!(tool_required("Monitoring::Plugin", list));
    assert!(!tool_required("pg_partman", list));
    assert!(!tool_required("openssl", list));
    assert!(!tool_required("prom", list), "whole names only");
}
