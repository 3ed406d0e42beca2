//! Secrets and safety: no password in any output, whatever the connection string and however
//! broken; shell hints that quote their words; `migrate` locked on the session that migrates;
//! a sandbox that signals only its own server.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use predicates::str::contains;

use metricsctl::db::sandbox::{Sandbox, SandboxOptions};

use crate::support::{
    TestDatabase, metricsctl, metricsctl_process, stderr_of, stdout_of, url_with_database,
};

/// The two halves of every password below: neither may ever be printed.
const SECRET: &str = "S3CR3T";
const SECRET_TAIL: &str = "X7Q9";

/// How a connection is given: a --database-url, or environment variables.
struct Shape {
    name: &'static str,
    flag: Option<String>,
    env: Vec<(&'static str, String)>,
}

fn flag(name: &'static str, url: impl Into<String>) -> Shape {
    Shape {
        name,
        flag: Some(url.into()),
        env: Vec::new(),
    }
}

fn env(name: &'static str, pairs: Vec<(&'static str, String)>) -> Shape {
    Shape {
        name,
        flag: None,
        env: pairs,
    }
}

/// 36 shapes: well-formed, ambiguous and broken, in a URL, key=value or the environment;
/// refused by the parser, unreachable, or refused by a real server that checks passwords.
fn shapes(server_port: u16, passfile: &std::path::Path) -> Vec<Shape> {
    let real =
        |user_info: &str| format!("postgresql://{user_info}@127.0.0.1:{server_port}/postgres");
    vec![
        flag(
            "url",
            format!("postgresql://metrics:{SECRET}@127.0.0.1:1/metrics"),
        ),
        flag(
            "url, unencoded @",
            format!("postgresql://metrics:{SECRET}@{SECRET_TAIL}@127.0.0.1:1/metrics"),
        ),
        flag(
            "url, encoded @",
            format!("postgresql://metrics:{SECRET}%40{SECRET_TAIL}@127.0.0.1:1/metrics"),
        ),
        flag(
            "postgres:// url",
            format!("postgres://metrics:{SECRET}@127.0.0.1:1/metrics"),
        ),
        flag(
            "url, unencoded /",
            format!("postgresql://metrics:{SECRET}/{SECRET_TAIL}@127.0.0.1:1/metrics"),
        ),
        flag(
            "url, unencoded ?",
            format!("postgresql://metrics:{SECRET}?{SECRET_TAIL}@127.0.0.1:1/metrics"),
        ),
        flag(
            "url, colon",
            format!("postgresql://metrics:{SECRET}:{SECRET_TAIL}@127.0.0.1:1/metrics"),
        ),
        flag(
            "url, hash",
            format!("postgresql://metrics:{SECRET}#{SECRET_TAIL}@127.0.0.1:1/metrics"),
        ),
        flag(
            "url, password parameter",
            format!("postgresql://metrics@127.0.0.1:1/metrics?password={SECRET}"),
        ),
        flag(
            "url, PASSWORD parameter",
            format!("postgresql://metrics@127.0.0.1:1/metrics?PASSWORD={SECRET}"),
        ),
        flag(
            "url, Password parameter",
            format!("postgresql://metrics@127.0.0.1:1/metrics?Password={SECRET}&sslmode=disable"),
        ),
        flag(
            "url, bad sslmode",
            format!("postgresql://metrics:{SECRET}@127.0.0.1:1/metrics?sslmode=sometimes"),
        ),
        flag(
            "url, bad port",
            format!("postgresql://metrics:{SECRET}@127.0.0.1:notaport/metrics"),
        ),
        flag(
            "url, unknown option",
            format!("postgresql://metrics:{SECRET}@127.0.0.1:1/metrics?no_such_option=1"),
        ),
        flag(
            "url, bad percent-encoding",
            format!("postgresql://metrics:{SECRET}%zz{SECRET_TAIL}@127.0.0.1:1/metrics"),
        ),
        flag(
            "url, IPv6",
            format!("postgresql://metrics:{SECRET}@[::1]:1/metrics"),
        ),
        flag(
            "url, two hosts",
            format!("postgresql://metrics:{SECRET}@127.0.0.1:1,127.0.0.1:2/metrics"),
        ),
        flag(
            "key=value",
            format!("host=127.0.0.1 port=1 user=metrics password={SECRET} dbname=metrics"),
        ),
        flag(
            "key=value, PASSWORD",
            format!("host=127.0.0.1 port=1 user=metrics PASSWORD={SECRET} dbname=metrics"),
        ),
        flag(
            "key=value, quoted with a space",
            format!(
                "host=127.0.0.1 port=1 user=metrics Password = '{SECRET} {SECRET_TAIL}' dbname=metrics"
            ),
        ),
        flag(
            "key=value, escaped quote",
            format!("host=127.0.0.1 port=1 password='{SECRET}\\'{SECRET_TAIL}' user=metrics"),
        ),
        flag(
            "key=value, unterminated quote",
            format!("host=127.0.0.1 port=1 password='{SECRET} {SECRET_TAIL}"),
        ),
        flag(
            "key=value, no =",
            format!("host=127.0.0.1 port=1 password {SECRET}"),
        ),
        flag("the password alone", SECRET),
        flag(
            "url without its colon",
            format!("postgresql//metrics:{SECRET}@127.0.0.1:1/metrics"),
        ),
        flag(
            "url, misspelt scheme",
            format!("postgresq://metrics:{SECRET}@127.0.0.1:1/metrics"),
        ),
        flag(
            "key=value, sslpassword",
            format!("host=127.0.0.1 port=1 user=metrics sslpassword={SECRET}"),
        ),
        flag(
            "key=value, unknown key",
            format!("host=127.0.0.1 port=1 user=metrics password={SECRET} bogus=1"),
        ),
        flag(
            "key=value, bad sslmode",
            format!("host=127.0.0.1 port=1 user=metrics password={SECRET} sslmode=sometimes"),
        ),
        flag(
            "url, refused by the server",
            real(&format!("intruder:{SECRET}")),
        ),
        env(
            "DATABASE_URL, unencoded @",
            vec![(
                "DATABASE_URL",
                format!("postgresql://metrics:{SECRET}@{SECRET_TAIL}@127.0.0.1:1/metrics"),
            )],
        ),
        env(
            "DATABASE_URL, refused by the server",
            vec![("DATABASE_URL", real(&format!("intruder:{SECRET}")))],
        ),
        env(
            "DB_*, refused by the server",
            vec![
                ("DB_HOST", "127.0.0.1".into()),
                ("DB_PORT", server_port.to_string()),
                ("DB_USER", "intruder".into()),
                ("DB_PASSWORD", format!("{SECRET}@{SECRET_TAIL}")),
                ("DB_NAME", "postgres".into()),
            ],
        ),
        env(
            "PG*, refused by the server",
            vec![
                ("PGHOST", "127.0.0.1".into()),
                ("PGPORT", server_port.to_string()),
                ("PGUSER", "intruder".into()),
                ("PGPASSWORD", format!("{SECRET}{SECRET_TAIL}")),
                ("PGDATABASE", "postgres".into()),
            ],
        ),
        env(
            "password file, refused by the server",
            vec![
                ("PGHOST", "127.0.0.1".into()),
                ("PGPORT", server_port.to_string()),
                ("PGUSER", "intruder".into()),
                ("PGDATABASE", "postgres".into()),
                ("PGPASSFILE", passfile.display().to_string()),
            ],
        ),
        Shape {
            name: "PGPASSWORD filling a URL, refused by the server",
            flag: Some(real("intruder")),
            env: vec![("PGPASSWORD", format!("{SECRET}:{SECRET_TAIL}"))],
        },
    ]
}

/// The output formats of a command.
#[derive(Clone, Copy)]
enum Formats {
    Check,
    Report,
    None,
}

const COMMANDS: &[(&[&str], Formats)] = &[
    (&["migrate"], Formats::Report),
    (&["migrate", "--dry-run"], Formats::Report),
    (&["migrate", "--dry-run", "--partitioned"], Formats::Report),
    (&["migrate", "--partitioned"], Formats::Report),
    (&["migrate", "status"], Formats::Check),
    (&["migrate", "repair"], Formats::Report),
    (&["migrate", "repair", "--dry-run"], Formats::Report),
    (&["replay", "@events"], Formats::Report),
    (&["replay", "--dry-run", "@events"], Formats::Report),
    (&["check"], Formats::Check),
    (&["check", "all"], Formats::Check),
    (&["check", "ordering"], Formats::Check),
    (&["check", "ordering", "--sensor", "s1"], Formats::Check),
    (&["check", "ordering", "--since", "1h"], Formats::Check),
    (&["check", "duplicates"], Formats::Check),
    (&["check", "partitions"], Formats::Check),
    (&["check", "sequence"], Formats::Check),
    (&["repair"], Formats::Report),
    (&["repair", "--dry-run", "--release-lost"], Formats::Report),
    (&["replay", "--repair", "@events"], Formats::Report),
    (&["partitions", "enable"], Formats::Report),
    (&["partitions", "enable", "--dry-run"], Formats::Report),
    (&["partitions", "create", "--months", "1"], Formats::Report),
    (&["partitions", "list"], Formats::Report),
    (
        &["partitions", "drop", "--older-than", "12"],
        Formats::Report,
    ),
    (
        &["partitions", "drop", "--older-than", "12", "--dry-run"],
        Formats::Report,
    ),
    (&["lag"], Formats::Check),
    (&["lag", "--warn", "1s", "--crit", "2s"], Formats::Check),
    (&["rate"], Formats::Check),
    (&["demo", "--yes"], Formats::None),
    (&["demo"], Formats::None),
    (&["generate", "1"], Formats::None),
    (&["completions", "bash"], Formats::None),
];

fn formats(kind: Formats) -> &'static [Option<&'static str>] {
    match kind {
        Formats::Check => &[
            Some("table"),
            Some("json"),
            Some("csv"),
            Some("nagios"),
            Some("prometheus"),
        ],
        Formats::Report => &[Some("table"), Some("json")],
        Formats::None => &[None],
    }
}

#[test]
fn no_password_is_ever_printed_whatever_the_shape_command_or_format() {
    let db = TestDatabase::new();
    let port: u16 = db
        .url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("the test server's port");
    let dir = tempfile::tempdir().unwrap();
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!("*:*:*:intruder:{SECRET}\\:{SECRET_TAIL}\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        "{\"event_id\":\"e1\",\"sensor_id\":\"s1\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"value\":1}\n",
    )
    .unwrap();
    let shapes = shapes(port, &passfile);
    assert_eq!(shapes.len(), 36);
    assert_eq!(COMMANDS.len(), 33);

    let mut probes = Vec::new();
    for shape in &shapes {
        for (command, kind) in COMMANDS {
            for format in formats(*kind) {
                probes.push((shape, *command, *format));
            }
        }
    }
    let next = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((shape, command, format)) = probes.get(i) else {
                        return;
                    };
                    let found = what_a_probe_got_wrong(shape, command, *format, &events);
                    failures.lock().unwrap().extend(found);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} probes printed a password or failed:\n{}",
        failures.len(),
        probes.len(),
        failures.join("\n---\n")
    );
}

/// Runs `command` (`@events` standing for the file `events`) in `format` with the connection
/// `shape`: what it got wrong, if anything. It must never print the password, whole or its
/// tail, and must exit with one of metricsctl's codes (0 to 3), never a crash.
fn what_a_probe_got_wrong(
    shape: &Shape,
    command: &[&str],
    format: Option<&str>,
    events: &std::path::Path,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut cmd = metricsctl_process();
    for arg in command.iter() {
        match *arg {
            "@events" => cmd.arg(events),
            other => cmd.arg(other),
        };
    }
    if let Some(format) = format {
        cmd.args(["--format", format]);
    }
    if let Some(url) = &shape.flag {
        cmd.arg("--database-url").arg(url);
    }
    for (name, value) in &shape.env {
        cmd.env(name, value);
    }
    let output = cmd
        .args(["--connect-timeout", "5s"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = format!("{}{}", stdout_of(&output), stderr_of(&output));
    if said.contains(SECRET) || said.contains(SECRET_TAIL) {
        failures.push(format!("{} | {command:?} {format:?}:\n{said}", shape.name));
    }
    let code = output.status.code();
    if !matches!(code, Some(0..=3)) {
        failures.push(format!(
            "{} | {command:?} {format:?}: exit {code:?}\n{said}",
            shape.name
        ));
    }
    failures
}

#[test]
fn shapes_that_look_like_a_url_but_are_ambiguous_are_refused_with_the_fix() {
    for (url, says) in [
        ("postgresql://metrics:Pa@ss@127.0.0.1:1/metrics", "%40"),
        ("postgresql://metrics:Pa/ss@127.0.0.1:1/metrics", "%2F"),
        ("host=h PASSWORD=x", "lower case"),
        ("hunter2", "not key=value"),
    ] {
        metricsctl()
            .args(["migrate", "status", "--database-url", url])
            .assert()
            .code(3)
            .stdout("")
            .stderr(contains(says))
            .stderr(contains("not shown"));
    }
}

#[test]
fn shell_hints_quote_their_words() {
    let db = TestDatabase::new();
    let hostile = url_with_database(&db.url, "x%3B%20rm%20-rf%20~");
    metricsctl()
        .args(["migrate", "status", "--database-url", &hostile])
        .assert()
        .code(3)
        .stderr(contains("createdb -h 127.0.0.1"))
        .stderr(contains("'x; rm -rf ~'"));
}

#[test]
fn migrate_holds_its_lock_on_the_session_that_migrates() {
    // processed_events exists and is locked by another transaction, so migrate's first
    // statement (CREATE INDEX IF NOT EXISTS on it) waits: there we look at who holds what.
    let db = TestDatabase::new();
    let mut blocker = db.client();
    blocker
        .batch_execute(
            "CREATE TABLE processed_events (
                event_id VARCHAR(255) PRIMARY KEY,
                sensor_id VARCHAR(255) NOT NULL,
                processed_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
                kafka_partition INTEGER,
                kafka_offset BIGINT)",
        )
        .unwrap();
    let mut lock = blocker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE processed_events IN ACCESS EXCLUSIVE MODE")
        .unwrap();

    let migrate = metricsctl_process()
        .args([
            "migrate",
            "--lock-timeout",
            "60s",
            "--database-url",
            &db.url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut observer = db.client();
    let mut waiting_pid = None;
    for _ in 0..300 {
        waiting_pid = observer
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
                 AND application_name = 'metricsctl' AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .map(|row| row.get::<_, i32>(0));
        if waiting_pid.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let waiting_pid = waiting_pid.expect("migrate never reached the locked table");
    let lock_holder: i32 = observer
        .query_one(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND ((classid::bigint << 32) | objid::bigint) = $1",
            &[&metricsctl::schema::migrations::MIGRATION_LOCK_KEY],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        lock_holder, waiting_pid,
        "the session running the migration must be the one holding the migration lock"
    );

    // That session dies: the run must stop, not go on unlocked.
    observer
        .execute("SELECT pg_terminate_backend($1)", &[&lock_holder])
        .unwrap();
    lock.rollback().unwrap();
    let output = migrate.wait_with_output().unwrap();
    assert_ne!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(!db.relation_exists("metrics"), "nothing was applied");
    db.metricsctl(&["migrate"]).assert().code(0);
}

#[test]
fn an_abandoned_sandbox_still_has_its_own_server_stopped() {
    // A sandbox whose owner died without cleaning up: its server must still be stopped by the
    // next start (the pid in its postmaster.pid is that data directory's postmaster).
    let orphan = Sandbox::start(&SandboxOptions::default()).expect("starting PostgreSQL");
    let root = orphan.directory().to_path_buf();
    let data = root.join("data");
    let pid: i32 = std::fs::read_to_string(data.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(metricsctl::db::sandbox::is_postmaster_of(pid, &data));
    assert!(!metricsctl::db::sandbox::is_postmaster_of(
        std::process::id() as i32,
        &data
    ));
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(root.join("owner.pid"), gone_pid.to_string()).unwrap();
    std::mem::forget(orphan);

    let next = Sandbox::start(&SandboxOptions::default()).expect("starting PostgreSQL");
    // Running: in /proc and not a zombie (a container's init may never reap it).
    let running = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(") ")
                    .map(|(_, rest)| !rest.starts_with('Z'))
            })
            .unwrap_or(false)
    };
    for _ in 0..100 {
        if !running(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !running(pid),
        "the orphaned postmaster {pid} is still running"
    );
    assert!(!root.exists());
    drop(next);
}

/// The command forms above cover every check: a new one fails here until it is added.
#[test]
fn every_check_is_among_the_command_forms() {
    for check in metricsctl::Check::iter() {
        assert!(
            COMMANDS
                .iter()
                .any(|(args, _)| args.starts_with(check.command())),
            "{:?} ({}) is not among the command forms whose output is searched for passwords",
            check,
            check.command().join(" ")
        );
    }
}
