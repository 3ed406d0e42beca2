//! Parse, then resolve: raw flags plus the environment become the settings commands run with.
//! This is the only module that reads environment variables.
//!
//! Which database, first found wins:
//! 1. `--database-url`, 2. `DATABASE_URL`, 3. the seed's `DB_*` variables (unset ones take the
//!    seed's defaults), 4. libpq's `PGHOST`/`PGPORT`/`PGUSER`/`PGPASSWORD`/`PGDATABASE` (as psql
//!    reads them), 5. the seed's default URL.
//!
//! Then, as libpq does, whatever a connection string (1, 2) leaves unset is filled from the PG*
//! variables (host, port, user, password, dbname, sslmode, sslrootcert, connect_timeout,
//! application_name), and a still missing password comes from the password file.

use std::collections::HashMap;
use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};

use crate::cli::{GlobalArgs, MAX_CONNECT_TIMEOUT};
use crate::db::pgpass;
use crate::db::target::{
    DEFAULT_DATABASE_URL, DatabaseTarget, PasswordSource, TargetOrigin, TlsDefaults,
};
use crate::output::Console;
use crate::status::{CouldNotRun, Failure};

/// Connecting gives up after this long unless told otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A snapshot of the environment variables metricsctl cares about.
#[derive(Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
}

impl fmt::Debug for Environment {
    // Names only: values include DATABASE_URL, DB_PASSWORD and PGPASSWORD.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Environment")
            .field("variables", &names)
            .finish()
    }
}

impl Environment {
    pub fn from_process() -> Environment {
        Environment {
            vars: std::env::vars().collect(),
        }
    }

    #[cfg(test)]
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Environment {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// A variable's value; set-but-empty counts as unset, as in libpq.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn tls_defaults(&self) -> TlsDefaults {
        TlsDefaults {
            sslmode: self.get("PGSSLMODE").map(str::to_string),
            sslrootcert: self.get("PGSSLROOTCERT").map(str::to_string),
            sslcert: self.get("PGSSLCERT").map(str::to_string),
            sslkey: self.get("PGSSLKEY").map(str::to_string),
            home: self.home(),
            os_user: self.get("USER").map(str::to_string),
        }
    }

    /// The home directory, as libpq finds it: HOME, else the password database.
    fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from).or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|user| user.dir)
        })
    }
}

const DB_VARIABLES: [&str; 5] = ["DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"];
/// libpq's variables that say where to connect; with none of the above set, any of them makes
/// metricsctl connect as psql would instead of using the seed's default.
const PG_WHERE_VARIABLES: [&str; 5] = ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"];

/// Picks the database (see the module's documentation for the order) and fills in what libpq
/// would. Warnings (an insecure password file) are returned for the caller to print.
pub fn resolve_target(
    flag: Option<&str>,
    env: &Environment,
) -> anyhow::Result<(DatabaseTarget, Vec<String>)> {
    let defaults = env.tls_defaults();
    let mut warnings = Vec::new();
    let connection_string = match flag.filter(|u| !u.trim().is_empty()) {
        Some(url) => Some((url, TargetOrigin::Flag)),
        None => env
            .get("DATABASE_URL")
            .map(|url| (url, TargetOrigin::DatabaseUrlEnv)),
    };
    if connection_string.is_none() && env.get("PGSERVICE").is_some() {
        bail!(
            "PGSERVICE is set, but metricsctl does not read pg_service.conf (no well-kept Rust \
             crate does): give the connection with --database-url or DATABASE_URL instead"
        );
    }
    let mut target = match connection_string {
        Some((text, origin)) => {
            let mut target = DatabaseTarget::parse_unfilled(text, origin, &defaults)?;
            fill_from_libpq_variables(&mut target, env)?;
            target.complete(&defaults);
            target
        }
        None if DB_VARIABLES.iter().any(|name| env.get(name).is_some()) => {
            let port = match env.get("DB_PORT") {
                Some(text) => text
                    .parse::<u16>()
                    .with_context(|| format!("DB_PORT={text:?} is not a port number"))?,
                None => 5432,
            };
            let mut target = DatabaseTarget::from_parts(
                env.get("DB_HOST").unwrap_or("localhost"),
                port,
                env.get("DB_USER").unwrap_or("metrics"),
                Some(env.get("DB_PASSWORD").unwrap_or("metrics")),
                env.get("DB_NAME").unwrap_or("metrics"),
                &defaults,
            )?;
            fill_session_settings(&mut target, env)?;
            target
        }
        None if PG_WHERE_VARIABLES
            .iter()
            .any(|name| env.get(name).is_some()) =>
        {
            let mut target =
                DatabaseTarget::parse_unfilled("", TargetOrigin::PgVariables, &defaults)?;
            fill_from_libpq_variables(&mut target, env)?;
            target.complete(&defaults);
            target
        }
        None => {
            let mut target = DatabaseTarget::parse(
                DEFAULT_DATABASE_URL,
                TargetOrigin::BuiltInDefault,
                &defaults,
            )?;
            fill_session_settings(&mut target, env)?;
            target
        }
    };
    if target.config.get_password().is_none() {
        password_from_file(&mut target, env, &mut warnings);
    }
    Ok((target, warnings))
}

/// libpq's rule: each PG* variable fills its parameter when the connection string left it unset.
fn fill_from_libpq_variables(target: &mut DatabaseTarget, env: &Environment) -> anyhow::Result<()> {
    let config = &mut target.config;
    if config.get_hosts().is_empty()
        && config.get_hostaddrs().is_empty()
        && let Some(hosts) = env.get("PGHOST")
    {
        for host in hosts.split(',') {
            config.host(host);
        }
    }
    if config.get_ports().is_empty()
        && let Some(ports) = env.get("PGPORT")
    {
        for port in ports.split(',') {
            let port: u16 = port
                .trim()
                .parse()
                .map_err(|_| anyhow!("PGPORT={ports:?} is not a port number"))?;
            config.port(port);
        }
    }
    if config.get_user().is_none()
        && let Some(user) = env.get("PGUSER")
    {
        config.user(user);
    }
    if config.get_dbname().is_none()
        && let Some(dbname) = env.get("PGDATABASE")
    {
        config.dbname(dbname);
    }
    if config.get_password().is_none()
        && let Some(password) = env.get("PGPASSWORD")
    {
        config.password(password);
        target.password_source = PasswordSource::PgPasswordVariable;
    }
    fill_session_settings(target, env)
}

/// The settings every source takes from the environment when it does not say:
/// PGCONNECT_TIMEOUT, PGAPPNAME and PGOPTIONS (PGSSLMODE, PGSSLROOTCERT, PGSSLCERT and PGSSLKEY
/// go with the TLS policy).
fn fill_session_settings(target: &mut DatabaseTarget, env: &Environment) -> anyhow::Result<()> {
    let config = &mut target.config;
    if config.get_connect_timeout().is_none()
        && let Some(text) = env.get("PGCONNECT_TIMEOUT")
    {
        let seconds: i64 = text
            .trim()
            .parse()
            .map_err(|_| anyhow!("PGCONNECT_TIMEOUT={text:?} is not a number of seconds"))?;
        // libpq: zero or less waits forever; we wait as long as we ever do. Under 2 s is 2 s.
        let timeout = match seconds {
            s if s <= 0 => MAX_CONNECT_TIMEOUT,
            s => Duration::from_secs(s.max(2) as u64).min(MAX_CONNECT_TIMEOUT),
        };
        config.connect_timeout(timeout);
    }
    if config.get_application_name().is_none()
        && let Some(name) = env.get("PGAPPNAME")
    {
        config.application_name(name);
    }
    // -c search_path=telemetry and the like: the server reads them at connection start, as it
    // does psql's.
    if config.get_options().is_none()
        && let Some(options) = env.get("PGOPTIONS")
    {
        config.options(options);
    }
    Ok(())
}

/// The password file's password for the first host, if it has one.
fn password_from_file(target: &mut DatabaseTarget, env: &Environment, warnings: &mut Vec<String>) {
    let home = env.home();
    let Some(path) = pgpass::location(
        target.passfile.as_deref(),
        env.get("PGPASSFILE"),
        home.as_deref(),
    ) else {
        return;
    };
    let host = match target.config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        Some(postgres::config::Host::Unix(dir)) => dir.display().to_string(),
        None => String::new(),
    };
    let port = target.config.get_ports().first().copied().unwrap_or(5432);
    let user = target.user().to_string();
    let database = target.database().to_string();
    let wanted = pgpass::Wanted {
        host: &host,
        port,
        database: &database,
        user: &user,
    };
    match pgpass::lookup(&path, &wanted) {
        pgpass::Lookup::Found { password, line } => {
            target.config.password(password);
            target.password_source = PasswordSource::PasswordFile {
                path: path.clone(),
                line,
            };
        }
        pgpass::Lookup::Ignored { warning } => warnings.push(warning),
        pgpass::Lookup::NotFound => {}
    }
}

/// Everything a command needs, resolved once from the flags and the environment. It only
/// resolves: connecting is `db::connect`, printing is `output::Console`.
#[derive(Debug, Clone)]
pub struct Context {
    pub target: DatabaseTarget,
    pub connect_timeout: Duration,
    /// The whole run's limit (`--timeout`, or the command's default); `None`: no limit.
    pub time_limit: Option<Duration>,
    /// How talk and reports reach the operator.
    pub console: Console,
}

impl Context {
    pub fn resolve(
        global: &GlobalArgs,
        env: &Environment,
        default_time_limit: Option<Duration>,
    ) -> Result<Context, Failure> {
        let flag = global.connect.database_url.as_ref().map(|u| u.0.as_str());
        let (target, warnings) = resolve_target(flag, env).could_not_run()?;
        for warning in warnings {
            eprintln!("{warning}");
        }
        // The flag, then the connection string's connect_timeout (or PGCONNECT_TIMEOUT), then 10 s.
        let connect_timeout = global
            .connect
            .connect_timeout
            .or(target.config.get_connect_timeout().copied())
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
            .min(MAX_CONNECT_TIMEOUT);
        let time_limit = match global.timeout {
            Some(limit) if limit.is_zero() => None,
            Some(limit) => Some(limit),
            None => default_time_limit,
        };
        Ok(Context {
            target,
            connect_timeout,
            time_limit,
            console: Console {
                progress: !global.quiet && std::io::stderr().is_terminal(),
                verbose: !global.quiet,
                quiet: global.quiet,
            },
        })
    }

    /// The same settings pointed at another database (the demo's sandbox).
    pub fn with_target(&self, target: DatabaseTarget) -> Context {
        Context {
            target,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flag: Option<&str>, env: &Environment) -> DatabaseTarget {
        resolve_target(flag, env).unwrap().0
    }

    #[test]
    fn the_flag_beats_database_url_beats_db_variables_beats_the_default() {
        let env = Environment::from_pairs([
            ("DATABASE_URL", "postgresql://env@envhost/envdb"),
            ("DB_HOST", "dbhost"),
        ]);
        let from_flag = resolve(Some("postgresql://flag@flaghost/flagdb"), &env);
        assert_eq!(from_flag.origin, TargetOrigin::Flag);
        assert_eq!(from_flag.endpoint(), "flaghost:5432");

        let from_env = resolve(None, &env);
        assert_eq!(from_env.origin, TargetOrigin::DatabaseUrlEnv);
        assert_eq!(from_env.database(), "envdb");

        let only_db_vars = Environment::from_pairs([("DB_HOST", "dbhost"), ("DB_PORT", "6543")]);
        let from_vars = resolve(None, &only_db_vars);
        assert_eq!(from_vars.origin, TargetOrigin::DbVariables);
        assert_eq!(from_vars.endpoint(), "dbhost:6543");
        assert_eq!(
            from_vars.user(),
            "metrics",
            "unset DB_USER takes the seed's default"
        );
        assert_eq!(from_vars.database(), "metrics");

        let nothing = resolve(None, &Environment::default());
        assert_eq!(nothing.origin, TargetOrigin::BuiltInDefault);
        assert_eq!(
            nothing.redacted(),
            "postgresql://metrics:***@localhost:5432/metrics"
        );
    }

    #[test]
    fn db_variables_carry_the_password_without_showing_it() {
        let env = Environment::from_pairs([("DB_PASSWORD", "pa ss@word/?")]);
        let target = resolve(None, &env);
        assert_eq!(
            target.config.get_password(),
            Some("pa ss@word/?".as_bytes())
        );
        assert!(!target.redacted().contains("word"));
    }

    #[test]
    fn a_bad_db_port_is_named() {
        let env = Environment::from_pairs([("DB_PORT", "fivefourthreetwo")]);
        let err = resolve_target(None, &env).unwrap_err().to_string();
        assert!(err.contains("DB_PORT"), "{err}");
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let env = Environment::from_pairs([("DATABASE_URL", ""), ("DB_HOST", ""), ("PGHOST", "")]);
        let target = resolve(None, &env);
        assert_eq!(target.origin, TargetOrigin::BuiltInDefault);
    }

    #[test]
    fn pg_variables_fill_what_the_connection_string_leaves_unset() {
        let env = Environment::from_pairs([
            ("PGHOST", "pghost"),
            ("PGPORT", "6432"),
            ("PGUSER", "pguser"),
            ("PGPASSWORD", "pgsecret"),
            ("PGDATABASE", "pgdb"),
            ("PGAPPNAME", "nightly-check"),
            ("PGCONNECT_TIMEOUT", "7"),
        ]);
        // A string that says nothing but the database: everything else comes from PG*.
        let sparse = resolve(Some("dbname=flagdb"), &env);
        assert_eq!(sparse.endpoint(), "pghost:6432");
        assert_eq!(sparse.user(), "pguser");
        assert_eq!(sparse.database(), "flagdb");
        assert_eq!(sparse.config.get_password(), Some("pgsecret".as_bytes()));
        assert_eq!(sparse.password_source, PasswordSource::PgPasswordVariable);
        assert_eq!(sparse.config.get_application_name(), Some("nightly-check"));
        assert_eq!(
            sparse.config.get_connect_timeout(),
            Some(&Duration::from_secs(7))
        );
        // What the string says wins.
        let full = resolve(Some("postgresql://u:p@h:1/db?application_name=x"), &env);
        assert_eq!(full.endpoint(), "h:1");
        assert_eq!(full.user(), "u");
        assert_eq!(full.config.get_password(), Some("p".as_bytes()));
        assert_eq!(full.password_source, PasswordSource::Given);
        assert_eq!(full.config.get_application_name(), Some("x"));
    }

    #[test]
    fn with_nothing_else_configured_pg_variables_beat_the_seeds_default() {
        let env = Environment::from_pairs([("PGHOST", "pghost"), ("USER", "alice")]);
        let target = resolve(None, &env);
        assert_eq!(target.origin, TargetOrigin::PgVariables);
        assert_eq!(target.endpoint(), "pghost:5432");
        assert_eq!(
            target.user(),
            "alice",
            "psql's default user: the login name"
        );
        assert_eq!(target.config.get_password(), None);
        // ... but DB_* (the seed's) and DATABASE_URL still come first.
        let both = Environment::from_pairs([("PGHOST", "pghost"), ("DB_HOST", "dbhost")]);
        assert_eq!(resolve(None, &both).endpoint(), "dbhost:5432");
        // PGSSLMODE alone says how, not where: the seed's default stays.
        let how = Environment::from_pairs([("PGSSLMODE", "disable")]);
        assert_eq!(resolve(None, &how).origin, TargetOrigin::BuiltInDefault);
    }

    #[test]
    fn the_password_file_supplies_a_missing_password_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "h:5432:db:u:from-file\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = file.display().to_string();
        let env = Environment::from_pairs([("PGPASSFILE", path.as_str())]);
        let target = resolve(Some("postgresql://u@h/db"), &env);
        assert_eq!(target.config.get_password(), Some("from-file".as_bytes()));
        assert_eq!(
            target.password_source,
            PasswordSource::PasswordFile {
                path: file.clone(),
                line: 1
            }
        );
        let given = resolve(Some("postgresql://u:given@h/db"), &env);
        assert_eq!(given.config.get_password(), Some("given".as_bytes()));
        // passfile= in the string wins over PGPASSFILE.
        let other = dir.path().join("other");
        std::fs::write(&other, "*:*:*:*:from-passfile\n").unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
        let keyword = format!("host=h user=u dbname=db passfile={}", other.display());
        assert_eq!(
            resolve(Some(&keyword), &env).config.get_password(),
            Some("from-passfile".as_bytes())
        );
        // Readable by others: ignored, with libpq's warning.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (target, warnings) = resolve_target(Some("postgresql://u@h/db"), &env).unwrap();
        assert_eq!(target.config.get_password(), None);
        assert!(warnings[0].contains("0600"), "{warnings:?}");
    }

    #[test]
    fn pgservice_is_refused_rather_than_ignored() {
        let env = Environment::from_pairs([("PGSERVICE", "prod")]);
        let err = resolve_target(None, &env).unwrap_err().to_string();
        assert!(err.contains("pg_service.conf"), "{err}");
        // An explicit string needs no service.
        assert!(resolve_target(Some("postgresql://u@h/db"), &env).is_ok());
    }

    #[test]
    fn debug_of_the_environment_shows_names_only() {
        let env = Environment::from_pairs([("PGPASSWORD", "hunter2"), ("DB_PASSWORD", "hunter3")]);
        let shown = format!("{env:?}");
        assert!(shown.contains("PGPASSWORD"), "{shown}");
        assert!(!shown.contains("hunter"), "{shown}");
    }
}
