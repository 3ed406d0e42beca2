//! Connection settings: precedence, clear failures (exit 3, password never shown) and TLS.

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use metricsctl::db::sandbox::{Sandbox, SandboxOptions, TlsFiles};

use crate::support::{TestDatabase, connect_url, metricsctl, tls_sandbox, url_with_database};

const SECRET: &str = "Sup3r-S3cret-pw";

#[test]
fn an_unreachable_server_is_one_clear_line_and_exit_3() {
    let url = format!("postgresql://metrics:{SECRET}@127.0.0.1:1/metrics");
    let assert = metricsctl()
        .args(["migrate", "status", "--database-url", &url])
        .assert()
        .code(3)
        .stdout("")
        .stderr(contains("127.0.0.1:1"))
        .stderr(contains("connection refused"))
        .stderr(contains("--database-url"))
        .stderr(contains(SECRET).not());
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn a_missing_database_is_named_with_what_to_do() {
    let db = TestDatabase::new();
    let missing = url_with_database(&db.url, "no_such_database_here");
    metricsctl()
        .args(["migrate", "--database-url", &missing])
        .assert()
        .code(3)
        .stderr(contains("no_such_database_here"))
        .stderr(contains("createdb"));
}

#[test]
fn an_unanswering_server_times_out_after_connect_timeout() {
    // A listener that accepts connections and never speaks.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("postgresql://metrics:{SECRET}@127.0.0.1:{port}/metrics?sslmode=disable");
    let started = std::time::Instant::now();
    metricsctl()
        .args([
            "migrate",
            "status",
            "--connect-timeout",
            "1s",
            "--database-url",
            &url,
        ])
        .assert()
        .code(3)
        .stderr(contains("no answer within 1s"))
        .stderr(contains(SECRET).not());
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    drop(listener);
}

/// A cluster of our own where passwords are checked, whatever the shared server trusts.
/// A server of this test's own that checks the password, and its address.
fn password_checking_server() -> (Sandbox, String) {
    let sandbox = crate::support::password_checking_server(SECRET);
    let port = sandbox.port();
    (sandbox, format!("127.0.0.1:{port}"))
}

#[test]
fn a_wrong_password_is_reported_without_showing_any_password() {
    let (_server, address) = password_checking_server();
    let wrong = format!("postgresql://app:{SECRET}-typo@{address}/appdb");
    metricsctl()
        .args(["migrate", "--database-url", &wrong])
        .assert()
        .code(3)
        .stderr(contains("password authentication failed"))
        .stderr(contains(&address))
        .stderr(contains(SECRET).not());

    // The right password works, and the environment variable is named when it is the source.
    let right = format!("postgresql://app:{SECRET}@{address}/appdb");
    metricsctl()
        .args(["migrate", "--database-url", &right])
        .assert()
        .code(0);
    metricsctl()
        .args(["migrate", "status"])
        .env("DATABASE_URL", &wrong)
        .assert()
        .code(3)
        .stderr(contains("DATABASE_URL"))
        .stderr(contains(SECRET).not());
}

#[test]
fn the_seeds_db_variables_are_used_when_no_url_is_given() {
    let (_server, address) = password_checking_server();
    let (host, port) = address.split_once(':').unwrap();
    let with_db_vars = |password: &str| {
        let mut command = metricsctl();
        command
            .args(["migrate"])
            .env("DB_HOST", host)
            .env("DB_PORT", port)
            .env("DB_USER", "app")
            .env("DB_PASSWORD", password)
            .env("DB_NAME", "appdb");
        command
    };
    with_db_vars(SECRET)
        .assert()
        .code(0)
        .stderr(contains("Applied 2 migration(s)"));
    with_db_vars("wrong")
        .assert()
        .code(3)
        .stderr(contains("DB_PASSWORD"))
        .stderr(contains("wrong").not());
    // --database-url still wins over DB_*.
    let mut flag_wins = with_db_vars("wrong");
    flag_wins
        .arg("--database-url")
        .arg(format!("postgresql://app:{SECRET}@{address}/appdb"));
    flag_wins.assert().code(0).stderr(contains("up to date"));
}

struct TestCertificates {
    ca_pem: String,
    server: TlsFiles,
}

/// A CA and a server certificate it signed for `names`.
fn certificates_for(names: &[&str]) -> TestCertificates {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "metricsctl test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let server_cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    TestCertificates {
        ca_pem: ca.pem(),
        server: TlsFiles {
            client_ca_pem: None,
            certificate_pem: server_cert.pem(),
            private_key_pem: server_key.serialize_pem(),
        },
    }
}

fn uses_tls(url: &str) -> bool {
    connect_url(url)
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn sslmode_works_as_in_psql_against_a_tls_server() {
    let certificates = certificates_for(&["localhost", "127.0.0.1"]);
    let Some(server) = tls_sandbox(
        "connection::sslmode_works_as_in_psql_against_a_tls_server",
        certificates.server.clone(),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("root.crt");
    std::fs::write(&ca_file, &certificates.ca_pem).unwrap();
    let other_ca_file = dir.path().join("other.crt");
    std::fs::write(&other_ca_file, certificates_for(&["localhost"]).ca_pem).unwrap();
    let port = server.port();
    let url =
        |host: &str, params: &str| format!("postgresql://postgres@{host}:{port}/postgres?{params}");

    for params in [
        "sslmode=require".to_string(),
        format!("sslmode=verify-ca&sslrootcert={}", ca_file.display()),
        format!("sslmode=verify-full&sslrootcert={}", ca_file.display()),
    ] {
        let target = url("127.0.0.1", &params);
        metricsctl()
            .args(["migrate", "status", "--database-url", &target])
            .assert()
            .code(1);
        assert!(uses_tls(&target), "{params} must encrypt");
    }
    assert!(
        uses_tls(&url("localhost", "sslmode=prefer")),
        "prefer uses TLS when offered"
    );
    assert!(!uses_tls(&url("127.0.0.1", "sslmode=disable")));

    // PGSSLMODE / PGSSLROOTCERT apply when the URL is silent, as in libpq.
    metricsctl()
        .args(["migrate", "status", "--database-url", &url("localhost", "")])
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &ca_file)
        .assert()
        .code(1);

    metricsctl()
        .args([
            "migrate",
            "status",
            "--database-url",
            &url(
                "127.0.0.1",
                &format!(
                    "sslmode=verify-full&sslrootcert={}",
                    other_ca_file.display()
                ),
            ),
        ])
        .assert()
        .code(3)
        .stderr(contains("certificate"))
        .stderr(contains("sslrootcert"));
}

#[test]
fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let certificates = certificates_for(&["db.example.internal"]);
    let Some(server) = tls_sandbox(
        "connection::verify_full_checks_the_host_name_and_verify_ca_does_not",
        certificates.server.clone(),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("root.crt");
    std::fs::write(&ca_file, &certificates.ca_pem).unwrap();
    let url = |mode: &str| {
        format!(
            "postgresql://postgres@127.0.0.1:{}/postgres?sslmode={mode}&sslrootcert={}",
            server.port(),
            ca_file.display()
        )
    };
    metricsctl()
        .args(["migrate", "status", "--database-url", &url("verify-ca")])
        .assert()
        .code(1);
    metricsctl()
        .args(["migrate", "status", "--database-url", &url("verify-full")])
        .assert()
        .code(3)
        .stderr(contains("certificate"));
}

#[test]
fn require_against_a_server_without_tls_fails_clearly_and_prefer_falls_back() {
    let server = Sandbox::start(&SandboxOptions::default()).expect("starting PostgreSQL");
    let url = |mode: &str| {
        format!(
            "postgresql://postgres@127.0.0.1:{}/postgres?sslmode={mode}",
            server.port()
        )
    };
    metricsctl()
        .args(["migrate", "status", "--database-url", &url("require")])
        .assert()
        .code(3)
        .stderr(contains("does not offer TLS"))
        .stderr(contains("sslmode=require"));
    metricsctl()
        .args(["migrate", "status", "--database-url", &url("prefer")])
        .assert()
        .code(1);
    metricsctl()
        .args(["migrate", "status", "--database-url", &url("verify-full")])
        .env("HOME", "/nonexistent")
        .assert()
        .code(3)
        .stderr(contains("sslrootcert"));
}

#[test]
fn every_transaction_runs_without_jit_and_leaves_the_session_as_it_was() {
    // The server's default is on; compiling costs more than the index-driven queries it would
    // speed up (queries/transaction_settings.sql). Set for the transaction only: behind a
    // transaction pool, a session-level setting would stay on the server connection for the next
    // client, and would not be there for metricsctl's own next transaction.
    let db = TestDatabase::new();
    let mut session = db.session();
    let (in_transaction, path): (String, String) = session
        .read(|tx| {
            let row = tx.row(
                "SELECT current_setting('jit'), current_setting('search_path')",
                &[],
            )?;
            Ok::<_, postgres::Error>((row.get(0), row.get(1)))
        })
        .unwrap();
    assert_eq!(in_transaction, "off");
    assert_eq!(path, "pg_catalog, \"public\", pg_temp");
    let after: String = session
        .client()
        .query_one("SELECT current_setting('jit')", &[])
        .unwrap()
        .get(0);
    assert_eq!(after, "on", "the session itself is left as it was");
    let server_default: String = db.scalar("SELECT boot_val FROM pg_settings WHERE name = 'jit'");
    assert_eq!(
        server_default, "on",
        "the test proves nothing where JIT is off anyway"
    );
}
