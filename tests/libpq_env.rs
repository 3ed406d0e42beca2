//! libpq's environment and password file, as psql users expect them: psql itself is the oracle.
//! For each environment, psql and metricsctl must both connect (to the same user, database
//! and port) or both fail.

use std::path::Path;
use std::time::{Duration, Instant};

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

use metricsctl::db::sandbox::Sandbox;

use crate::support::{metricsctl, pg_tool, stderr_of, stdout_of};

/// A password that needs escaping in a password file (':' and '\').
const PASSWORD: &str = "Sup3r:S3cret\\x";

/// A cluster of our own where passwords are checked.
fn password_checking_server() -> Sandbox {
    crate::support::password_checking_server(PASSWORD)
}

/// What psql connects to in this environment: "user database port", or None.
fn psql_connects(env: &[(&str, String)], conninfo: Option<&str>) -> (Option<String>, String) {
    let mut psql = std::process::Command::new(pg_tool("psql"));
    psql.args(["-X", "-w", "-A", "-t", "-c"])
        .arg("SELECT current_user || ' ' || current_database() || ' ' || current_setting('port')");
    if let Some(conninfo) = conninfo {
        psql.arg(conninfo);
    }
    for variable in crate::support::DATABASE_VARIABLES {
        psql.env_remove(variable);
    }
    psql.env("PGPASSFILE", crate::support::NO_PASSWORD_FILE);
    for (name, value) in env {
        psql.env(name, value);
    }
    let output = psql.output().expect("running psql");
    let answer = output
        .status
        .success()
        .then(|| stdout_of(&output).trim().to_string());
    (answer, stderr_of(&output))
}

/// What metricsctl connects to: `migrate` names it on stderr ("on postgresql://user:***@host:port/db").
fn metricsctl_connects(env: &[(&str, String)], conninfo: Option<&str>) -> (Option<String>, String) {
    let mut command = metricsctl();
    command.arg("migrate");
    if let Some(conninfo) = conninfo {
        command.args(["--database-url", conninfo]);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stderr = stderr_of(&output);
    let answer = (output.status.code() == Some(0)).then(|| {
        let url = stderr
            .split(" on postgresql://")
            .nth(1)
            .and_then(|rest| rest.split([';', ' ']).next())
            .unwrap_or_else(|| panic!("no target named in: {stderr}"));
        // user[:***]@host:port/db
        let (user_info, rest) = url.split_once('@').unwrap();
        let user = user_info.split(':').next().unwrap();
        let (address, database) = rest.split_once('/').unwrap();
        let port = address.rsplit(':').next().unwrap();
        format!("{user} {database} {port}")
    });
    (answer, stderr)
}

/// A name, the environment, the connection string if any, and whether psql connects.
type Scenario<'a> = (&'a str, Vec<(&'a str, String)>, Option<&'a str>, bool);

fn passfile(dir: &Path, name: &str, text: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

/// The password files the scenarios name (paths), in a directory of their own.
struct PasswordFiles {
    exact: String,
    wildcards: String,
    readable: String,
    wrong: String,
}

/// A file with app's exact line; one reaching it through wildcards and escapes, after lines for
/// others; one with the right password readable by others; one with a wrong password.
fn password_files(dir: &Path, port: &str) -> PasswordFiles {
    let escaped = PASSWORD.replace('\\', "\\\\").replace(':', "\\:");
    PasswordFiles {
        exact: passfile(
            dir,
            "exact",
            &format!("127.0.0.1:{port}:appdb:app:{escaped}\n"),
            0o600,
        ),
        wildcards: passfile(
            dir,
            "wildcards",
            &format!(
                "# comment\n127.0.0.1:*:*:other:nope\n*:{port}:*:app:{escaped}\n*:*:*:*:wrong\n"
            ),
            0o600,
        ),
        readable: passfile(dir, "readable", &format!("*:*:*:*:{escaped}\n"), 0o644),
        wrong: passfile(dir, "wrong", "*:*:*:app:not-the-password\n", 0o600),
    }
}

/// PGHOST, PGPORT and PGUSER for app on the server at `port`, and the variables in `extra`.
fn pg(port: &str, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("PGHOST", "127.0.0.1".to_string()),
        ("PGPORT", port.to_string()),
        ("PGUSER", "app".to_string()),
    ];
    for (name, value) in extra {
        let name: &'static str = match *name {
            "PGPASSWORD" => "PGPASSWORD",
            "PGDATABASE" => "PGDATABASE",
            "PGPASSFILE" => "PGPASSFILE",
            other => panic!("{other}"),
        };
        env.push((name, value.to_string()));
    }
    env
}

/// Every way of naming the target and the password that the test tries, with whether psql
/// connects.
fn scenarios<'a>(port: &str, files: &'a PasswordFiles, url: &'a str) -> Vec<Scenario<'a>> {
    let pg = |extra: &[(&str, &str)]| pg(port, extra);
    vec![
        (
            "PG* only",
            pg(&[("PGPASSWORD", PASSWORD), ("PGDATABASE", "appdb")]),
            None,
            true,
        ),
        (
            "password file, exact line",
            pg(&[("PGDATABASE", "appdb"), ("PGPASSFILE", &files.exact)]),
            None,
            true,
        ),
        (
            "password file, wildcards and escapes",
            pg(&[("PGDATABASE", "appdb"), ("PGPASSFILE", &files.wildcards)]),
            None,
            true,
        ),
        (
            "password file readable by others",
            pg(&[("PGDATABASE", "appdb"), ("PGPASSFILE", &files.readable)]),
            None,
            false,
        ),
        (
            "password file with a wrong password",
            pg(&[("PGDATABASE", "appdb"), ("PGPASSFILE", &files.wrong)]),
            None,
            false,
        ),
        (
            "dbname from the string, the rest from PG*",
            pg(&[("PGPASSWORD", PASSWORD)]),
            Some("dbname=appdb"),
            true,
        ),
        (
            "a URL without password, PGPASSWORD",
            vec![("PGPASSWORD", PASSWORD.to_string())],
            Some(url),
            true,
        ),
        (
            "a URL without password, password file",
            vec![("PGPASSFILE", files.wildcards.clone())],
            Some(url),
            true,
        ),
        (
            "no database: the user's name, which does not exist",
            pg(&[("PGPASSWORD", PASSWORD)]),
            None,
            false,
        ),
        (
            "no password anywhere",
            pg(&[("PGDATABASE", "appdb")]),
            None,
            false,
        ),
    ]
}

/// psql connects in the scenario as expected, metricsctl connects exactly where psql does (to
/// the same user, database and port), both name a password file others may read, and
/// metricsctl never prints the password.
fn psql_and_metricsctl_agree((name, env, conninfo, connects): Scenario) {
    let (psql, psql_said) = psql_connects(&env, conninfo);
    let (ours, we_said) = metricsctl_connects(&env, conninfo);
    assert_eq!(psql.is_some(), connects, "{name}: psql {psql_said}");
    assert_eq!(
        ours, psql,
        "{name}: metricsctl and psql disagree.\nmetricsctl: {we_said}\npsql: {psql_said}"
    );
    if name == "password file readable by others" {
        assert!(
            psql_said.contains("has group or world access"),
            "{psql_said}"
        );
        assert!(we_said.contains("has group or world access"), "{we_said}");
    }
    assert!(!we_said.contains("S3cret"), "{name}: {we_said}");
}

#[test]
fn metricsctl_reads_the_pg_variables_and_the_password_file_as_psql_does() {
    let server = password_checking_server();
    let port = server.port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let files = password_files(dir.path(), &port);
    let url = format!("postgresql://app@127.0.0.1:{port}/appdb");
    for scenario in scenarios(&port, &files, &url) {
        psql_and_metricsctl_agree(scenario);
    }
    // A refused password from the file names the file and line, not the password.
    metricsctl()
        .args(["migrate", "status"])
        .envs(pg(
            &port,
            &[("PGDATABASE", "appdb"), ("PGPASSFILE", &files.wrong)],
        ))
        .assert()
        .code(3)
        .stderr(contains(format!(
            "line 1 of the password file {}",
            files.wrong
        )))
        .stderr(contains("not-the-password").not());
}

#[test]
fn the_seeds_variables_and_database_url_still_come_before_libpqs() {
    let server = password_checking_server();
    let port = server.port().to_string();
    let pg = [
        ("PGHOST", "127.0.0.1".to_string()),
        ("PGPORT", port.clone()),
        ("PGUSER", "app".to_string()),
        ("PGPASSWORD", PASSWORD.to_string()),
        ("PGDATABASE", "appdb".to_string()),
    ];
    metricsctl()
        .args(["migrate", "status"])
        .envs(pg.clone())
        .assert()
        .code(1);
    // DB_* wins (here pointing nowhere), as does DATABASE_URL.
    metricsctl()
        .args(["migrate", "status"])
        .envs(pg.clone())
        .env("DB_PORT", "1")
        .assert()
        .code(3)
        .stderr(contains("DB_HOST/DB_PORT"));
    metricsctl()
        .args(["migrate", "status"])
        .envs(pg.clone())
        .env("DATABASE_URL", "postgresql://app@127.0.0.1:1/appdb")
        .assert()
        .code(3)
        .stderr(contains("from DATABASE_URL"));
    // --database-url and --connect-timeout before the command.
    metricsctl()
        .args([
            "--database-url",
            &format!("postgresql://app@127.0.0.1:{port}/appdb"),
            "--connect-timeout",
            "5s",
            "migrate",
            "status",
        ])
        .env("PGPASSWORD", PASSWORD)
        .assert()
        .code(1);
    // PGSERVICE cannot be honoured here: refused, never silently ignored.
    metricsctl()
        .args(["migrate", "status"])
        .env("PGSERVICE", "prod")
        .assert()
        .code(3)
        .stderr(contains("pg_service.conf"));
}

#[test]
fn pgconnect_timeout_bounds_the_attempt_when_nothing_else_does() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    metricsctl()
        .args([
            "migrate",
            "status",
            "--database-url",
            &format!("postgresql://app@127.0.0.1:{port}/appdb?sslmode=disable"),
        ])
        .env("PGCONNECT_TIMEOUT", "2")
        .assert()
        .code(3)
        .stderr(contains("no answer within 2s"));
    assert!(started.elapsed() < Duration::from_secs(8));
    drop(listener);
}
