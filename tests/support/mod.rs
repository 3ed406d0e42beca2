//! The test harness: a real PostgreSQL, never a mock.
//!
//! `METRICSCTL_TEST_DATABASE_URL` names a server to use; otherwise one throwaway cluster is
//! started for the whole test binary with the machine's initdb/pg_ctl (metricsctl's own
//! `Sandbox`), and stopped and removed when the binary exits, pass or fail. Every test gets a
//! fresh database of its own, so tests run in parallel. Tests that restart the server or need
//! special server settings start a `Sandbox` of their own.

#![allow(dead_code)]

pub mod citus;
pub mod pgbouncer;
pub mod proxy;
pub mod scenarios;

use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use assert_cmd::Command;
use metricsctl::db::sandbox::{BINDIR_VARIABLE, PgBinaries, Sandbox, SandboxOptions, TlsFiles};
use metricsctl::db::target::{DatabaseTarget, TargetOrigin, TlsDefaults};

pub const TEST_DATABASE_URL_VARIABLE: &str = "METRICSCTL_TEST_DATABASE_URL";

/// The shared server: its URL (any database) and whether we started it.
struct SharedServer {
    url: String,
}

static SHARED_SERVER: OnceLock<SharedServer> = OnceLock::new();
/// The cluster we started, taken and dropped (stopped, removed) at process exit.
static SHARED_SANDBOX: Mutex<Option<Sandbox>> = Mutex::new(None);

extern "C" fn stop_shared_sandbox() {
    if let Ok(mut sandbox) = SHARED_SANDBOX.lock() {
        sandbox.take();
    }
}

/// The shared server's URL (any database): for a test on the Citus cluster that compares with a
/// single server.
pub fn shared_server_url() -> String {
    shared_server().url.clone()
}

fn shared_server() -> &'static SharedServer {
    SHARED_SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var(TEST_DATABASE_URL_VARIABLE)
            && !url.trim().is_empty()
        {
            return SharedServer { url };
        }
        let sandbox = Sandbox::start(&SandboxOptions::default()).unwrap_or_else(|e| {
            panic!(
                "the tests need PostgreSQL: set {TEST_DATABASE_URL_VARIABLE} to a server's URL, \
                 or install the server binaries so a throwaway cluster can be started.\n{e:#}"
            )
        });
        let url = sandbox.url("postgres");
        *SHARED_SANDBOX.lock().unwrap() = Some(sandbox);
        // Runs on normal exit and on the test harness's exit(101) after failures.
        unsafe {
            nix::libc::atexit(stop_shared_sandbox);
        }
        SharedServer { url }
    })
}

/// A connection string with another database name in it.
pub fn url_with_database(url: &str, database: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (url, None),
        };
        let scheme_end = base.find("://").unwrap() + 3;
        let authority_end = base[scheme_end..]
            .find('/')
            .map(|i| scheme_end + i)
            .unwrap_or(base.len());
        let mut out = format!("{}/{database}", &base[..authority_end]);
        if let Some(query) = query {
            out.push('?');
            out.push_str(query);
        }
        out
    } else {
        format!("{url} dbname={database}")
    }
}

pub fn connect_url(url: &str) -> postgres::Client {
    let target = DatabaseTarget::parse(url, TargetOrigin::Flag, &TlsDefaults::default())
        .expect("test URL parses");
    metricsctl::db::connect(&target, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("connecting to the test server: {e}"))
}

static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty database for one test, dropped when the test ends.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
    /// On the Citus cluster: `migrate` builds the distributed layout.
    pub distributed: bool,
}

impl TestDatabase {
    /// A database of this test's own: on the shared server, or on the shared Citus cluster when
    /// the test runs on the distributed layout (`on_both_layouts!`'s `distributed_*` variants).
    pub fn new() -> TestDatabase {
        if citus::is_distributed() {
            let name = Self::next_name();
            let url = citus::create_database(&name);
            return TestDatabase {
                admin_url: url_with_database(&url, "postgres"),
                url,
                name,
                distributed: true,
            };
        }
        Self::on_server(&shared_server().url)
    }

    fn next_name() -> String {
        format!(
            "metricsctl_test_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A database on a server the test started itself.
    pub fn on_server(admin_url: &str) -> TestDatabase {
        let name = Self::next_name();
        let mut admin = connect_url(admin_url);
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("creating the test database");
        TestDatabase {
            url: url_with_database(admin_url, &name),
            name,
            admin_url: admin_url.to_string(),
            distributed: false,
        }
    }

    pub fn client(&self) -> postgres::Client {
        connect_url(&self.url)
    }

    /// A metricsctl session on this database, as the commands open one.
    pub fn session(&self) -> metricsctl::db::Session {
        let target = DatabaseTarget::parse(&self.url, TargetOrigin::Flag, &TlsDefaults::default())
            .expect("test URL parses");
        metricsctl::db::Session::open(&target, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("opening a session on the test database: {e}"))
    }

    /// The metricsctl binary pointed at this database through --database-url.
    pub fn metricsctl(&self, args: &[&str]) -> Command {
        let mut command = metricsctl();
        command.args(args).arg("--database-url").arg(&self.url);
        command
    }

    /// Runs `metricsctl replay --format json` on this database: its exit code and summary.
    pub fn replay(&self, args: &[&str], inputs: &[&std::path::Path]) -> (i32, serde_json::Value) {
        let output = self
            .metricsctl(&["replay", "--format", "json"])
            .args(args)
            .args(inputs)
            .output()
            .unwrap();
        (output.status.code().unwrap_or(-1), summary_of(&output))
    }

    /// Runs `metricsctl migrate` and insists it worked.
    pub fn migrate(&self) {
        self.metricsctl(&self.migrate_args(false)).assert().code(0);
    }

    /// `migrate`, with `--distributed` on the Citus cluster.
    fn migrate_args(&self, partitioned: bool) -> Vec<&'static str> {
        let mut args = vec!["migrate"];
        if partitioned {
            args.push("--partitioned");
        }
        if self.distributed {
            args.push("--distributed");
        }
        args
    }

    pub fn relation_exists(&self, name: &str) -> bool {
        self.client()
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .unwrap()
            .get(0)
    }

    pub fn wait_for_other_sessions_to_end(&self) {
        let mut client = self.client();
        for _ in 0..300 {
            let others: i64 = client
                .query_one(
                    // Client sessions only: Citus keeps sessions of its own in each database.
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid() \
                       AND backend_type = 'client backend' \
                       AND application_name NOT LIKE 'citus%'",
                    &[],
                )
                .unwrap()
                .get(0);
            if others == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("sessions on {} did not end within 30 s", self.name);
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.scalar(sql)
    }

    /// The single value a query returns.
    pub fn scalar<T: for<'a> postgres::types::FromSql<'a>>(&self, sql: &str) -> T {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.distributed {
            citus::drop_database(&self.name);
            return;
        }
        if let Ok(mut admin) = std::panic::catch_unwind(|| connect_url(&self.admin_url)) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The password of every role [`roles`] makes.
pub const ROLE_PASSWORD: &str = "role-password";

/// Roles besides the superuser, made once per test process on the shared server: the owner of
/// the guide's tables (who migrates), a monitoring role, a writer, and mallory, who may create
/// objects in schema public and nothing else.
pub struct Roles {
    pub owner: String,
    pub monitor: String,
    pub writer: String,
    pub mallory: String,
}

pub fn roles() -> &'static Roles {
    static ROLES: OnceLock<Roles> = OnceLock::new();
    ROLES.get_or_init(|| {
        let id = std::process::id();
        let roles = Roles {
            owner: format!("owner_{id}"),
            monitor: format!("monitor_{id}"),
            writer: format!("writer_{id}"),
            mallory: format!("mallory_{id}"),
        };
        let mut admin = connect_url(&shared_server().url);
        for role in [&roles.owner, &roles.monitor, &roles.writer, &roles.mallory] {
            admin
                .batch_execute(&format!(
                    "DROP ROLE IF EXISTS \"{role}\"; CREATE ROLE \"{role}\" LOGIN PASSWORD '{ROLE_PASSWORD}'"
                ))
                .unwrap_or_else(|e| panic!("creating role {role}: {e}"));
        }
        roles
    })
}

/// A URL with another user and the roles' password in it.
pub fn url_as(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let rest = match rest.split_once('@') {
        Some((_, host)) => host,
        None => rest,
    };
    format!("{scheme}://{role}:{ROLE_PASSWORD}@{rest}")
}

impl TestDatabase {
    /// A fresh database owned by `role`, who may then create the guide's tables in public.
    pub fn owned_by(role: &str) -> TestDatabase {
        let db = TestDatabase::new();
        let mut admin = connect_url(&db.admin_url);
        admin
            .batch_execute(&format!(
                "ALTER DATABASE \"{}\" OWNER TO \"{role}\"",
                db.name
            ))
            .unwrap();
        // PostgreSQL 15 gave public to the database owner; older clusters need it said.
        db.client()
            .batch_execute(&format!("ALTER SCHEMA public OWNER TO \"{role}\""))
            .unwrap();
        db
    }

    /// This database's URL as another role.
    pub fn url_as(&self, role: &str) -> String {
        url_as(&self.url, role)
    }

    /// The metricsctl binary pointed at this database as `role`.
    pub fn metricsctl_as(&self, role: &str, args: &[&str]) -> Command {
        let mut command = metricsctl();
        command
            .args(args)
            .arg("--database-url")
            .arg(self.url_as(role));
        command
    }

    /// Plants tests/fixtures/hostile_objects.sql as `mallory` (PUBLIC may create in public):
    /// thousands of operators, functions, aggregates, types and views that raise when called.
    pub fn plant_hostile_objects(&self, mallory: &str) {
        let output = StdCommand::new(pg_tool("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v"])
            .arg(format!("mallory={mallory}"))
            .arg("-f")
            .arg(format!(
                "{}/tests/fixtures/hostile_objects.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg(format!("--dbname={}", self.url))
            .output()
            .expect("running psql");
        assert!(
            output.status.success(),
            "planting the hostile objects: {}",
            stderr_of(&output)
        );
    }
}

/// The metricsctl binary with none of the caller's database settings leaking in.
pub fn metricsctl() -> Command {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin!("metricsctl"));
    for variable in DATABASE_VARIABLES {
        command.env_remove(variable);
    }
    // Not the tester's own ~/.pgpass either.
    command.env("PGPASSFILE", NO_PASSWORD_FILE);
    command
}

/// The same, as a std Command, for tests that run several at once.
pub fn metricsctl_process() -> StdCommand {
    let mut command = StdCommand::new(assert_cmd::cargo::cargo_bin!("metricsctl"));
    for variable in DATABASE_VARIABLES {
        command.env_remove(variable);
    }
    command.env("PGPASSFILE", NO_PASSWORD_FILE);
    command
}

/// A password file that does not exist.
pub const NO_PASSWORD_FILE: &str = "/nonexistent/metricsctl-tests/pgpass";

pub const DATABASE_VARIABLES: [&str; 20] = [
    "DATABASE_URL",
    "DB_HOST",
    "DB_PORT",
    "DB_USER",
    "DB_PASSWORD",
    "DB_NAME",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGOPTIONS",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGAPPNAME",
    "PGCONNECT_TIMEOUT",
    "PGPASSFILE",
    "PGSERVICE",
];

/// A PostgreSQL client tool (pg_dump, psql) from the same installation the harness uses. With
/// METRICSCTL_PG_BINDIR set it is always that directory's: a tool missing there fails the test
/// that runs it, rather than another version's being used without a word.
pub fn pg_tool(name: &str) -> std::path::PathBuf {
    match PgBinaries::locate() {
        Ok(binaries) if binaries.tool(name).is_file() => binaries.tool(name),
        Ok(binaries) if std::env::var_os(BINDIR_VARIABLE).is_some_and(|d| !d.is_empty()) => {
            binaries.tool(name)
        }
        _ => std::path::PathBuf::from(name),
    }
}

/// The PostgreSQL installation the sandboxes run: `postgres --version` and its directory.
pub fn installation() -> String {
    let postgres = pg_tool("postgres");
    let version = StdCommand::new(&postgres)
        .arg("--version")
        .output()
        .map(|output| stdout_of(&output).trim().to_string())
        .unwrap_or_else(|e| format!("postgres ({e})"));
    format!(
        "{version} in {}",
        postgres.parent().unwrap_or(&postgres).display()
    )
}

/// The shared server's version (`SHOW server_version`), for messages that depend on it.
pub fn server_version() -> String {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            connect_url(&shared_server().url)
                .query_one("SHOW server_version", &[])
                .unwrap()
                .get(0)
        })
        .clone()
}

/// The shared server's major version (15, 16, 18, ...).
pub fn server_major_version() -> u32 {
    let number: String = connect_url(&shared_server().url)
        .query_one("SHOW server_version_num", &[])
        .unwrap()
        .get(0);
    number.parse::<u32>().unwrap() / 10_000
}

pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `count` generated events (over `sensors` sensors) to `path` with `metricsctl generate`.
pub fn generate_events(path: &std::path::Path, count: u64, sensors: u32, seed: u64, format: &str) {
    metricsctl()
        .args([
            "generate",
            &count.to_string(),
            "--sensors",
            &sensors.to_string(),
        ])
        .args(["--seed", &seed.to_string(), "--format", format, "-o"])
        .arg(path)
        .assert()
        .code(0);
}

/// The replay invariants, checked with SQL of our own: exactly `expected` distinct events in
/// both tables, no duplicates, no guard row without its metric and no metric without its guard.
pub fn assert_exactly_once(db: &TestDatabase, expected: i64) {
    let mut client = db.client();
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM processed_events),
                    (SELECT count(*) FROM metrics),
                    (SELECT count(DISTINCT event_id) FROM metrics),
                    (SELECT count(*) FROM processed_events p
                      WHERE NOT EXISTS (SELECT 1 FROM metrics m WHERE m.event_id = p.event_id)),
                    (SELECT count(*) FROM metrics m
                      WHERE NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.event_id = m.event_id))",
            &[],
        )
        .unwrap();
    let (guards, metrics, distinct, lost, unguarded): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(
        (guards, metrics, distinct, lost, unguarded),
        (expected, expected, expected, 0, 0),
        "(guard rows, metrics, distinct metric ids, guards without metric, metrics without guard)"
    );
}

/// The replay summary printed with --format json.
pub fn summary_of(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}); stdout: {}; stderr: {}",
            stdout_of(output),
            stderr_of(output)
        )
    })
}

/// The replay invariants for whatever has committed so far (say, after a kill): both tables hold
/// the same events, each once. Returns how many.
pub fn assert_consistent(db: &TestDatabase) -> i64 {
    // A killed client's server session finishes its statement (and may commit it) before it
    // notices; wait for it so the counts stand still.
    db.wait_for_other_sessions_to_end();
    let committed = db.count("SELECT count(*) FROM processed_events");
    assert_exactly_once(db, committed);
    committed
}

/// Keeps the first `keep` lines of a file (after skipping `skip`) in a new file.
pub fn slice_lines(from: &std::path::Path, to: &std::path::Path, skip: usize, keep: usize) {
    let text = std::fs::read_to_string(from).unwrap();
    let lines: Vec<&str> = text.lines().skip(skip).take(keep).collect();
    std::fs::write(to, lines.join("\n") + "\n").unwrap();
}

/// The two layouts of metrics every replay and check test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Plain,
    /// `migrate --partitioned`, plus partitions for 2026-01..=2026-03 where the tests' fixed
    /// timestamps fall (later months land in DEFAULT or the current month's partition).
    Partitioned,
}

impl TestDatabase {
    pub fn migrate_as(&self, layout: Layout) {
        match layout {
            Layout::Plain => self.migrate(),
            Layout::Partitioned => {
                self.metricsctl(&self.migrate_args(true)).assert().code(0);
                self.metricsctl(&["partitions", "create", "--from", "2026-01", "--months", "2"])
                    .assert()
                    .code(0);
            }
        }
    }
}

/// Runs a test body once per layout, as `name::plain` and `name::partitioned`.
#[macro_export]
macro_rules! on_both_layouts {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                $crate::layout_variant!($name, plain, Plain);
                $crate::layout_variant!($name, partitioned, Partitioned);
            }
        )+
    };
}

/// `on_both_layouts!`, and each test again on the distributed layout (Citus; NOT RUN where it
/// is not installed): `distributed_plain`, `distributed_partitioned`.
#[macro_export]
macro_rules! on_every_layout {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                $crate::layout_variant!($name, plain, Plain);
                $crate::layout_variant!($name, partitioned, Partitioned);
                $crate::layout_variant!($name, distributed_plain, Plain, distributed);
                $crate::layout_variant!($name, distributed_partitioned, Partitioned, distributed);
            }
        )+
    };
}

/// One test function of the layout macros: on a single server, or (`distributed`) on the Citus
/// cluster, marked so that its `TestDatabase::new()` is made there.
#[macro_export]
macro_rules! layout_variant {
    ($name:ident, $variant:ident, $layout:ident) => {
        #[test]
        fn $variant() {
            super::$name($crate::support::Layout::$layout)
        }
    };
    ($name:ident, $variant:ident, $layout:ident, distributed) => {
        #[test]
        fn $variant() {
            let test = concat!(module_path!(), "::", stringify!($variant));
            if $crate::support::citus::enter_distributed(test) {
                super::$name($crate::support::Layout::$layout)
            }
        }
    };
}

/// The event ids of a JSON Lines input, by line number (gzip read as far as it is intact).
pub fn event_ids_by_line(path: &std::path::Path) -> Vec<(u64, String)> {
    use std::io::Read;
    let raw = std::fs::read(path).unwrap();
    let mut text = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut decoder = flate2::read::MultiGzDecoder::new(&raw[..]);
        let mut chunk = [0u8; 8192];
        while let Ok(n) = decoder.read(&mut chunk) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&chunk[..n]);
        }
        // A cut-off stream ends in the middle of a line: that line was never complete.
        if let Some(end) = text.iter().rposition(|&b| b == b'\n') {
            text.truncate(end + 1);
        } else {
            text.clear();
        }
    } else {
        text = raw;
    }
    String::from_utf8_lossy(&text)
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            Some((i as u64 + 1, value["event_id"].as_str()?.to_string()))
        })
        .collect()
}

/// Checks a replay's claim "every event before FILE:LINE is committed" against the database:
/// every event of the inputs before that place (earlier inputs whole) has its guard row and its
/// metric. `inputs` are given as on the command line. Returns how many events the claim covers.
pub fn assert_claim_holds(db: &TestDatabase, inputs: &[&std::path::Path], claim: &str) -> usize {
    let (file, line) = claim.rsplit_once(':').expect("a FILE:LINE claim");
    let line: u64 = line.parse().expect("a line number");
    let position = inputs
        .iter()
        .position(|p| p.display().to_string() == file)
        .unwrap_or_else(|| panic!("the claim names {file}, not one of the inputs"));
    let mut covered: Vec<String> = Vec::new();
    for (index, input) in inputs.iter().enumerate().take(position + 1) {
        covered.extend(
            event_ids_by_line(input)
                .into_iter()
                .filter(|(n, _)| index < position || *n < line)
                .map(|(_, id)| id),
        );
    }
    let missing: Vec<String> = db
        .client()
        .query(
            "SELECT e.id FROM unnest(CAST($1 AS text[])) AS e(id)
             WHERE NOT EXISTS (SELECT 1 FROM metrics m WHERE m.event_id = e.id)
                OR NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.event_id = e.id)
             LIMIT 5",
            &[&covered],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        missing.is_empty(),
        "the claim \"every event before {claim} is committed\" is false: {missing:?} are missing"
    );
    covered.len()
}

/// One JSON Lines event.
pub fn event_line(id: &str, sensor: &str, timestamp: &str, value: f64) -> String {
    serde_json::json!({"event_id": id, "sensor_id": sensor, "timestamp": timestamp, "value": value})
        .to_string()
}

/// Writes lines, each ended by a newline.
pub fn write_lines(path: &std::path::Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// Waits until the replay has committed something (under load it can take a while to start).
pub fn wait_until_writing(db: &TestDatabase) {
    wait_until_writing_more_than(db, 0);
}

/// Waits until more than `rows` guard rows are committed (a replay started on a non-empty table).
pub fn wait_until_writing_more_than(db: &TestDatabase, rows: i64) {
    let mut watcher = db.client();
    let started = std::time::Instant::now();
    while watcher
        .query_one("SELECT count(*) FROM processed_events", &[])
        .unwrap()
        .get::<_, i64>(0)
        <= rows
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the replay never wrote"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Set (by `.ci/run`) to make a missing external tool fail the tests instead of being reported:
/// `1` for every tool, or a comma-separated list of the tools required (`promtool,
/// Monitoring::Plugin`), the others being reported.
pub const REQUIRE_TOOLS_VARIABLE: &str = "METRICSCTL_REQUIRE_TOOLS";

/// Whether METRICSCTL_REQUIRE_TOOLS makes `tool` required.
pub fn tool_required(tool: &str, setting: Option<&str>) -> bool {
    match setting.map(str::trim) {
        None | Some("") | Some("0") => false,
        Some("1") => true,
        Some(list) => list.split(',').any(|name| name.trim() == tool),
    }
}

/// Whether an external tool a test needs (promtool, Monitoring::Plugin, pg_partman, a server
/// built with SSL) is here. Where it is not, the test says so on the process's own stderr —
/// libtest captures only `eprintln!`, so this line shows in every run, passing or not — and the
/// caller returns without checking anything. Where METRICSCTL_REQUIRE_TOOLS requires the tool
/// (CI), its absence fails the test.
pub fn tool_available(test: &str, tool: &str, available: bool, install: &str) -> bool {
    if available {
        return true;
    }
    let message = format!("NOT RUN: {test} needs {tool}, which is not available here ({install})");
    let setting = std::env::var(REQUIRE_TOOLS_VARIABLE).ok();
    if tool_required(tool, setting.as_deref()) {
        panic!(
            "{message}; {REQUIRE_TOOLS_VARIABLE}={} requires it",
            setting.unwrap_or_default()
        );
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "\n{message}");
    false
}

/// What PostgreSQL says when `ssl = on` is asked of a server built without OpenSSL.
const NO_SSL_IN_BUILD: &str = "SSL is not supported by this build";

/// A sandbox of its own that speaks TLS, or `None` (with a NOT RUN line, or a failure where
/// METRICSCTL_REQUIRE_TOOLS requires it) when the installation's server was built without SSL,
/// as the PyPI wheels' are. Any other failure to start fails the test.
pub fn tls_sandbox(test: &str, tls: TlsFiles) -> Option<Sandbox> {
    match Sandbox::start(&SandboxOptions {
        tls: Some(tls),
        ..SandboxOptions::default()
    }) {
        Ok(sandbox) => Some(sandbox),
        Err(error) if format!("{error:#}").contains(NO_SSL_IN_BUILD) => {
            tool_available(
                test,
                SSL_SERVER_TOOL,
                false,
                &format!("{} says \"{NO_SSL_IN_BUILD}\"", installation()),
            );
            None
        }
        Err(error) => panic!("starting PostgreSQL with TLS: {error:#}"),
    }
}

/// The name METRICSCTL_REQUIRE_TOOLS knows a TLS-capable server by.
pub const SSL_SERVER_TOOL: &str = "openssl";

/// A program on PATH (or named by an environment variable, to point a test elsewhere).
pub fn program(name: &str, override_variable: &str) -> Option<std::path::PathBuf> {
    if let Ok(path) = std::env::var(override_variable) {
        let path = std::path::PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Polls `ready` every 20 ms until it holds, failing the test after 60 s. Tests wait for what
/// they need to have happened, never for a fixed time.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `metricsctl replay --format json ARGS INPUTS` on this database, running in the background with
/// its output piped.
pub fn spawn_replay(
    db: &TestDatabase,
    args: &[&str],
    inputs: &[&std::path::Path],
) -> std::process::Child {
    spawn_replay_at(&db.url, args, inputs)
}

/// `spawn_replay` through another connection string (a proxy in front of the database).
pub fn spawn_replay_at(
    url: &str,
    args: &[&str],
    inputs: &[&std::path::Path],
) -> std::process::Child {
    metricsctl_process()
        .args(["replay", "--format", "json", "--database-url", url])
        .args(args)
        .args(inputs)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A session of its own holding a lock until dropped: a table lock in an open transaction, or
/// a session-level advisory lock. Its application_name names it in other sessions' messages.
pub struct LockHolder {
    client: postgres::Client,
}

impl LockHolder {
    /// Runs `lock_sql` (e.g. `LOCK TABLE metrics IN ACCESS SHARE MODE`) in a transaction it
    /// keeps open.
    pub fn table(db: &TestDatabase, application_name: &str, lock_sql: &str) -> LockHolder {
        let mut client = connect_url(&format!("{}?application_name={application_name}", db.url));
        client.batch_execute("BEGIN").unwrap();
        client.batch_execute(lock_sql).unwrap();
        LockHolder { client }
    }

    /// Takes the session-level advisory lock `key`.
    pub fn advisory(db: &TestDatabase, application_name: &str, key: i64) -> LockHolder {
        let mut client = connect_url(&format!("{}?application_name={application_name}", db.url));
        client
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .unwrap();
        LockHolder { client }
    }

    pub fn pid(&mut self) -> i32 {
        self.client
            .query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .get(0)
    }

    /// Ends the session, releasing the lock.
    pub fn release(self) {
        self.client.close().unwrap();
    }
}

/// Holds a running replay's writers: a session of its own takes a lock that every insert into
/// `processed_events` waits for, and returns once a writer waits on it. What the test does next
/// (a signal, a lost connection) then surely happens before the replay can finish.
pub fn hold_the_writers(db: &TestDatabase) -> LockHolder {
    let holder = LockHolder::table(
        db,
        "holding-the-writers",
        "LOCK TABLE processed_events IN SHARE MODE",
    );
    let mut watcher = db.client();
    wait_until("a replay writer waiting on the lock", || {
        watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = 'metricsctl' AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            > 0
    });
    holder
}

/// The schema as pg_dump prints it (UTC, without owners, privileges or refinery's history).
pub fn schema_dump(db: &TestDatabase) -> String {
    let output = StdCommand::new(pg_tool("pg_dump"))
        .args(["--schema-only", "--no-owner", "--no-privileges"])
        .args(["--exclude-table=refinery_schema_history"])
        .arg(format!("--dbname={}", db.url))
        .env("PGTZ", "UTC")
        .output()
        .expect("running pg_dump");
    assert!(output.status.success(), "pg_dump: {}", stderr_of(&output));
    stdout_of(&output)
        .lines()
        // pg_dump 15.14+ brackets its output with a random \restrict key.
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a command with `--format json` on this database: its JSON, having checked the exit code
/// (and, for a check, that the JSON says the same code).
pub fn json_of(db: &TestDatabase, args: &[&str], expected_code: i32) -> serde_json::Value {
    let output = db
        .metricsctl(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(expected_code),
        "{args:?}: {}{}",
        stdout_of(&output),
        stderr_of(&output)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout_of(&output)));
    if let Some(code) = json.get("exit_code") {
        assert_eq!(code, expected_code, "{json}");
    }
    json
}

/// A server of this test's own that checks passwords: role `app` with `password`, owning
/// database `appdb`.
pub fn password_checking_server(password: &str) -> Sandbox {
    let sandbox = Sandbox::start(&SandboxOptions::default()).expect("starting PostgreSQL");
    let mut admin = connect_url(&sandbox.url("postgres"));
    admin
        .batch_execute(&format!(
            "CREATE ROLE app LOGIN PASSWORD '{}'",
            password.replace('\'', "''")
        ))
        .unwrap();
    admin
        .batch_execute("CREATE DATABASE appdb OWNER app")
        .unwrap();
    sandbox
}
