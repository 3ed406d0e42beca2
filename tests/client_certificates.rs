//! TLS as operators meet it (issue 19): client certificates found the way libpq finds them, with
//! its precedence and its rule for the key's permissions, judged beside psql against a server whose
//! pg_hba.conf says `cert`; and a server certificate of X.509 version 1 (what `CREATE EXTENSION
//! citus` and some installers make) accepted where libpq verifies nothing. Every certificate is
//! made by openssl.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use metricsctl::db::sandbox::{Sandbox, SandboxOptions, TlsFiles};
use predicates::str::contains;

use crate::support::{
    SSL_SERVER_TOOL, connect_url, installation, metricsctl, pg_tool, program, stderr_of,
    tool_available,
};

/// Runs openssl with these arguments in `dir`, insisting it worked.
fn openssl(dir: &Path, args: &[&str]) {
    let output = StdCommand::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        stderr_of(&output)
    );
}

/// A key and a certificate signing request for `subject`, the key as openssl writes it (PKCS#8).
fn key_and_request(dir: &Path, name: &str, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    );
}

/// A CA, a server certificate for 127.0.0.1 it signed, and client certificates for `certuser`
/// (the right one; X.509 version 1, as `openssl x509 -req` makes it) and `someone_else` (version 3).
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn make() -> Certificates {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        openssl(
            path,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=metricsctl test CA",
            ],
        );
        std::fs::write(path.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        key_and_request(path, "server", "/CN=127.0.0.1");
        openssl(
            path,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        std::fs::write(path.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (user, extensions) in [("certuser", None), ("someone_else", Some("client.ext"))] {
            key_and_request(path, user, &format!("/CN={user}"));
            let (csr, crt) = (format!("{user}.csr"), format!("{user}.crt"));
            let mut args = vec![
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
            ];
            if let Some(file) = extensions {
                args.extend(["-extfile", file]);
            }
            openssl(path, &args);
            std::fs::set_permissions(
                path.join(format!("{user}.key")),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        Certificates { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap()
    }

    /// A file's path, as text for a connection string or a variable.
    fn path(&self, name: &str) -> String {
        self.file(name).display().to_string()
    }
}

/// openssl is here and the installation's server speaks TLS; else NOT RUN (a failure where
/// METRICSCTL_REQUIRE_TOOLS requires it).
fn tls_tools(test: &str) -> bool {
    tool_available(
        test,
        SSL_SERVER_TOOL,
        program("openssl", "METRICSCTL_OPENSSL").is_some(),
        "apt-get install openssl",
    )
}

/// A server whose pg_hba.conf lets `certuser` in only with a certificate its CA signed.
fn certificate_server(test: &str, certs: &Certificates) -> Option<Sandbox> {
    let started = Sandbox::start(&SandboxOptions {
        tls: Some(TlsFiles {
            certificate_pem: certs.read("server.crt"),
            private_key_pem: certs.read("server.key"),
            client_ca_pem: Some(certs.read("ca.crt")),
        }),
        hba_first: vec!["hostssl all certuser 127.0.0.1/32 cert".to_string()],
        ..SandboxOptions::default()
    });
    let sandbox = match started {
        Ok(sandbox) => sandbox,
        Err(e) if format!("{e:#}").contains("SSL is not supported by this build") => {
            tool_available(
                test,
                SSL_SERVER_TOOL,
                false,
                &format!("{} has no SSL", installation()),
            );
            return None;
        }
        Err(e) => panic!("starting PostgreSQL with TLS: {e:#}"),
    };
    let mut admin = connect_url(&sandbox.url("postgres"));
    admin.batch_execute("CREATE ROLE certuser LOGIN").unwrap();
    admin
        .batch_execute("CREATE DATABASE certdb OWNER certuser")
        .unwrap();
    Some(sandbox)
}

/// The libpq keyword string for certuser on `server`, plus `extra`.
fn keywords(server: &Sandbox, extra: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user=certuser dbname=certdb sslmode=require {extra}",
        server.port()
    )
}

/// What psql says to the same settings: whether it connected, and its error.
fn psql(connection: &str, env: &[(&str, String)], home: &Path) -> (bool, String) {
    let mut command = StdCommand::new(pg_tool("psql"));
    command
        .args(["-X", "-A", "-t", "-c", "SELECT 1", connection])
        .env("HOME", home);
    for variable in crate::support::DATABASE_VARIABLES {
        command.env_remove(variable);
    }
    command.env_remove("PGSSLCERT").env_remove("PGSSLKEY");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("running psql");
    (output.status.success(), stderr_of(&output))
}

/// metricsctl (`migrate`, which connects and writes) with the same settings as `psql`.
fn metricsctl_with(
    connection: &str,
    env: &[(&str, String)],
    home: &Path,
) -> assert_cmd::assert::Assert {
    let mut command = metricsctl();
    command
        .args(["migrate", "--database-url", connection])
        .env("HOME", home)
        .env_remove("PGSSLCERT")
        .env_remove("PGSSLKEY");
    for (name, value) in env {
        command.env(name, value);
    }
    command.assert()
}

/// certuser's settings on `server` with the certificate `cert` and the key `key` named in the
/// connection string.
fn certificate_in_string(server: &Sandbox, certs: &Certificates, cert: &str, key: &str) -> String {
    keywords(
        server,
        &format!("sslcert={} sslkey={}", certs.path(cert), certs.path(key)),
    )
}

/// PGSSLCERT and PGSSLKEY naming `user`'s certificate and key.
fn certificate_in_environment(certs: &Certificates, user: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PGSSLCERT", certs.path(&format!("{user}.crt"))),
        ("PGSSLKEY", certs.path(&format!("{user}.key"))),
    ]
}

#[test]
fn client_certificates_are_found_as_libpq_finds_them_and_psql_agrees() {
    let test = "client_certificates_are_found_as_libpq_finds_them_and_psql_agrees";
    if !tls_tools(test) {
        return;
    }
    let certs = Certificates::make();
    let Some(server) = certificate_server(test, &certs) else {
        return;
    };
    let empty_home = tempfile::tempdir().unwrap();
    let bare = keywords(&server, "");
    let in_string = certificate_in_string(&server, &certs, "certuser.crt", "certuser.key");
    certificates_in_the_string_or_the_environment_are_found(
        &certs,
        &bare,
        &in_string,
        empty_home.path(),
    );
    // 3. ~/.postgresql/postgresql.crt and .key.
    let home = home_with_certuser_certificate(&certs);
    assert!(psql(&bare, &[], home.path()).0);
    metricsctl_with(&bare, &[], home.path()).code(0);
    the_string_beats_the_environment_which_beats_home(&certs, &bare, &in_string, home.path());
    let mismatched = certificate_in_string(&server, &certs, "certuser.crt", "someone_else.key");
    a_certificate_with_another_key_is_refused_before_anything_is_sent(
        &mismatched,
        empty_home.path(),
    );
    a_key_others_may_read_is_refused_with_libpqs_words(&bare, home.path());
    whose_the_key_is_matters_as_for_libpq(&bare, home.path());
    a_certificate_without_its_key_is_an_error(&bare, home.path());
}

/// Without a certificate anywhere both are refused (and the hint says where one goes); with one
/// named in the connection string (libpq's first place) or in PGSSLCERT and PGSSLKEY (its
/// second), both connect.
fn certificates_in_the_string_or_the_environment_are_found(
    certs: &Certificates,
    bare: &str,
    in_string: &str,
    empty_home: &Path,
) {
    // No certificate anywhere: refused, and the hint says where one goes.
    assert!(!psql(bare, &[], empty_home).0);
    metricsctl_with(bare, &[], empty_home)
        .code(3)
        .stderr(contains("client certificate"))
        .stderr(contains("PGSSLCERT"));

    // 1. In the connection string.
    assert!(psql(in_string, &[], empty_home).0);
    metricsctl_with(in_string, &[], empty_home).code(0);

    // 2. PGSSLCERT and PGSSLKEY.
    let by_env = certificate_in_environment(certs, "certuser");
    assert!(psql(bare, &by_env, empty_home).0);
    metricsctl_with(bare, &by_env, empty_home).code(0);
}

/// A home whose ~/.postgresql/postgresql.crt and .key (0600) are certuser's: the third place
/// libpq looks.
fn home_with_certuser_certificate(certs: &Certificates) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let dot = home.path().join(".postgresql");
    std::fs::create_dir(&dot).unwrap();
    std::fs::copy(certs.file("certuser.crt"), dot.join("postgresql.crt")).unwrap();
    std::fs::copy(certs.file("certuser.key"), dot.join("postgresql.key")).unwrap();
    std::fs::set_permissions(
        dot.join("postgresql.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    home
}

/// The string beats the environment, which beats the home directory: someone_else's
/// certificate where a higher source names it fails for both, certuser's succeeds for both.
fn the_string_beats_the_environment_which_beats_home(
    certs: &Certificates,
    bare: &str,
    in_string: &str,
    home: &Path,
) {
    let wrong_env = certificate_in_environment(certs, "someone_else");
    assert!(psql(in_string, &wrong_env, home).0);
    metricsctl_with(in_string, &wrong_env, home).code(0);
    assert!(!psql(bare, &wrong_env, home).0);
    metricsctl_with(bare, &wrong_env, home)
        .code(3)
        .stderr(contains("certificate"));
}

/// A certificate with another certificate's key is refused before anything is sent.
fn a_certificate_with_another_key_is_refused_before_anything_is_sent(
    mismatched: &str,
    empty_home: &Path,
) {
    assert!(!psql(mismatched, &[], empty_home).0);
    metricsctl_with(mismatched, &[], empty_home)
        .code(3)
        .stderr(contains("do not belong together"));
}

/// A key others may read is refused by both, with libpq's words.
fn a_key_others_may_read_is_refused_with_libpqs_words(bare: &str, home: &Path) {
    std::fs::set_permissions(
        home.join(".postgresql/postgresql.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (connected, said) = psql(bare, &[], home);
    assert!(
        !connected && said.contains("group or world access"),
        "{said}"
    );
    metricsctl_with(bare, &[], home)
        .code(3)
        .stderr(contains("has group or world access"))
        .stderr(contains("0600"));
}

/// Whose the key is: libpq lets a root-owned key be group-readable (0640), any other owner's
/// nothing beyond 0600, whoever reads it. Judged beside psql where the tests can chown (root).
fn whose_the_key_is_matters_as_for_libpq(bare: &str, home: &Path) {
    if nix::unistd::geteuid().is_root()
        && let Some(other) = nix::unistd::User::from_name("postgres").unwrap()
    {
        let key = home.join(".postgresql/postgresql.key");
        for (owner, mode, accepted) in [
            (nix::unistd::Uid::from_raw(0), 0o640, true),
            (nix::unistd::Uid::from_raw(0), 0o644, false),
            (other.uid, 0o600, true),
            (other.uid, 0o640, false),
            (other.uid, 0o644, false),
        ] {
            std::os::unix::fs::chown(&key, Some(owner.as_raw()), None).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let (connected, said) = psql(bare, &[], home);
            assert_eq!(
                connected, accepted,
                "psql, key of uid {owner} mode {mode:o}: {said}"
            );
            let outcome = metricsctl_with(bare, &[], home);
            if accepted {
                outcome.code(0);
            } else {
                outcome
                    .code(3)
                    .stderr(contains("has group or world access"));
            }
        }
        std::os::unix::fs::chown(&key, Some(0), None).unwrap();
    }
}

/// A certificate without its key is an error for both; a named certificate file that does not
/// exist is not (libpq goes on without one, and the server refuses).
fn a_certificate_without_its_key_is_an_error(bare: &str, home: &Path) {
    std::fs::remove_file(home.join(".postgresql/postgresql.key")).unwrap();
    assert!(!psql(bare, &[], home).0);
    metricsctl_with(bare, &[], home)
        .code(3)
        .stderr(contains("certificate present"))
        .stderr(contains("not private key file"));
}

#[test]
fn a_version_1_server_certificate_is_accepted_where_libpq_verifies_nothing() {
    let test = "a_version_1_server_certificate_is_accepted_where_libpq_verifies_nothing";
    if !tls_tools(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    version_1_certificate(dir.path());
    let Some(server) = crate::support::tls_sandbox(
        test,
        TlsFiles {
            certificate_pem: std::fs::read_to_string(dir.path().join("v1.crt")).unwrap(),
            private_key_pem: std::fs::read_to_string(dir.path().join("v1.key")).unwrap(),
            client_ca_pem: None,
        },
    ) else {
        return;
    };
    let server_url = server.url("postgres");
    let url = |query: &str| format!("{server_url}?{query}");
    let home = tempfile::tempdir().unwrap();
    for mode in ["sslmode=require", "sslmode=prefer", ""] {
        migrate_status(&url(mode), home.path()).code(1);
    }
    // verify-ca trusts that very certificate when sslrootcert names it, as OpenSSL does; one
    // signed by nobody it trusts is refused, and the message says why.
    let own = dir.path().join("v1.crt").display().to_string();
    migrate_status(
        &url(&format!("sslmode=verify-ca&sslrootcert={own}")),
        home.path(),
    )
    .code(1);
    verify_full_compares_the_name_as_libpq_does(&server, &own, home.path());
    let certs_elsewhere = tempfile::tempdir().unwrap();
    let other = certificate_of_nobody_trusted(certs_elsewhere.path());
    for mode in ["verify-ca", "verify-full"] {
        migrate_status(
            &url(&format!("sslmode={mode}&sslrootcert={other}")),
            home.path(),
        )
        .code(3)
        .stderr(contains("X.509 version 1"));
    }
}

/// `v1.key` and `v1.crt` in `dir`: a self-signed certificate for 127.0.0.1 without extensions,
/// which openssl writes as X.509 version 1, as Citus does (checked).
fn version_1_certificate(dir: &Path) {
    key_and_request(dir, "v1", "/CN=127.0.0.1");
    // No extensions: openssl writes an X.509 version 1 certificate, as Citus does.
    openssl(
        dir,
        &[
            "x509", "-req", "-in", "v1.csr", "-signkey", "v1.key", "-out", "v1.crt", "-days", "2",
        ],
    );
    let text = StdCommand::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(dir.join("v1.crt"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"),
        "not a version 1 certificate"
    );
}

/// `metricsctl migrate status` on `url` with `home` as HOME.
fn migrate_status(url: &str, home: &Path) -> assert_cmd::assert::Assert {
    metricsctl()
        .args(["migrate", "status", "--database-url", url])
        .env("HOME", home)
        .assert()
}

/// verify-full, with the server's own certificate (`own`) as the root: its name compared as libpq
/// compares it (CN=127.0.0.1, no SAN): the host as written in the certificate connects, another
/// name for it does not, for psql and metricsctl both.
fn verify_full_compares_the_name_as_libpq_does(server: &Sandbox, own: &str, home: &Path) {
    let full = |host: &str| {
        format!(
            "host={host} port={} dbname=postgres user=postgres sslmode=verify-full \
             sslrootcert={own}",
            server.port()
        )
    };
    for (host, accepted) in [("127.0.0.1", true), ("localhost", false)] {
        let psql = StdCommand::new(pg_tool("psql"))
            .args(["-X", "-A", "-t", "-c", "SELECT 1", &full(host)])
            .env("HOME", home)
            .env_remove("PGSSLMODE")
            .output()
            .unwrap();
        assert_eq!(
            psql.status.success(),
            accepted,
            "psql to {host}: {}",
            String::from_utf8_lossy(&psql.stderr)
        );
        let outcome = migrate_status(&full(host), home);
        if accepted {
            outcome.code(1);
        } else {
            outcome.code(3);
        }
    }
}

/// A self-signed certificate for someone else, in `dir`: its path.
fn certificate_of_nobody_trusted(dir: &Path) -> String {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.crt",
            "-days",
            "2",
            "-subj",
            "/CN=other",
        ],
    );
    dir.join("other.crt").display().to_string()
}
