//! Parse, then resolve: raw flags plus the environment become the settings commands run with.
//! This is the only module that reads environment variables.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::{ConnectArgs, GlobalArgs};
use crate::db;
use crate::status::{CouldNotRun, Failure};
use crate::target::{DEFAULT_DATABASE_URL, DatabaseTarget, TargetOrigin, TlsDefaults};

/// A snapshot of the environment variables metricsctl cares about.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
}

impl Environment {
    pub fn from_process() -> Environment {
        Environment {
            vars: std::env::vars().collect(),
        }
    }

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
            home: self.get("HOME").map(PathBuf::from),
            os_user: self.get("USER").map(str::to_string),
        }
    }
}

const DB_VARIABLES: [&str; 5] = ["DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"];

/// Picks the database: --database-url, then DATABASE_URL, then the seed's DB_* variables, then
/// the seed's default URL.
pub fn resolve_target(flag: Option<&str>, env: &Environment) -> anyhow::Result<DatabaseTarget> {
    let defaults = env.tls_defaults();
    if let Some(url) = flag.filter(|u| !u.trim().is_empty()) {
        return DatabaseTarget::parse(url, TargetOrigin::Flag, &defaults);
    }
    if let Some(url) = env.get("DATABASE_URL") {
        return DatabaseTarget::parse(url, TargetOrigin::DatabaseUrlEnv, &defaults);
    }
    if DB_VARIABLES.iter().any(|name| env.get(name).is_some()) {
        let port = match env.get("DB_PORT") {
            Some(text) => text
                .parse::<u16>()
                .with_context(|| format!("DB_PORT={text:?} is not a port number"))?,
            None => 5432,
        };
        return DatabaseTarget::from_parts(
            env.get("DB_HOST").unwrap_or("localhost"),
            port,
            env.get("DB_USER").unwrap_or("metrics"),
            Some(env.get("DB_PASSWORD").unwrap_or("metrics")),
            env.get("DB_NAME").unwrap_or("metrics"),
            &defaults,
        );
    }
    DatabaseTarget::parse(
        DEFAULT_DATABASE_URL,
        TargetOrigin::BuiltInDefault,
        &defaults,
    )
}

/// Everything a database command needs, resolved once.
#[derive(Debug, Clone)]
pub struct Context {
    pub target: DatabaseTarget,
    pub connect_timeout: Duration,
    /// Draw progress bars (stderr is a terminal and --quiet is off).
    pub progress: bool,
    /// Informational messages on stderr are wanted.
    pub verbose: bool,
}

impl Context {
    pub fn resolve(
        connect: &ConnectArgs,
        global: &GlobalArgs,
        env: &Environment,
    ) -> Result<Context, Failure> {
        let target = resolve_target(connect.database_url.as_deref(), env).could_not_run()?;
        Ok(Context {
            target,
            connect_timeout: connect.connect_timeout,
            progress: !global.quiet && std::io::stderr().is_terminal(),
            verbose: !global.quiet,
        })
    }

    /// The same settings pointed at another database (the demo's sandbox).
    pub fn with_target(&self, target: DatabaseTarget) -> Context {
        Context {
            target,
            ..self.clone()
        }
    }

    pub fn connect(&self) -> Result<postgres::Client, Failure> {
        db::connect(&self.target, self.connect_timeout)
    }

    /// Prints an informational line on stderr unless --quiet.
    pub fn say(&self, message: impl std::fmt::Display) {
        if self.verbose {
            eprintln!("{message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_beats_database_url_beats_db_variables_beats_the_default() {
        let env = Environment::from_pairs([
            ("DATABASE_URL", "postgresql://env@envhost/envdb"),
            ("DB_HOST", "dbhost"),
        ]);
        let from_flag = resolve_target(Some("postgresql://flag@flaghost/flagdb"), &env).unwrap();
        assert_eq!(from_flag.origin, TargetOrigin::Flag);
        assert_eq!(from_flag.endpoint(), "flaghost:5432");

        let from_env = resolve_target(None, &env).unwrap();
        assert_eq!(from_env.origin, TargetOrigin::DatabaseUrlEnv);
        assert_eq!(from_env.database(), "envdb");

        let only_db_vars = Environment::from_pairs([("DB_HOST", "dbhost"), ("DB_PORT", "6543")]);
        let from_vars = resolve_target(None, &only_db_vars).unwrap();
        assert_eq!(from_vars.origin, TargetOrigin::DbVariables);
        assert_eq!(from_vars.endpoint(), "dbhost:6543");
        assert_eq!(
            from_vars.user(),
            "metrics",
            "unset DB_USER takes the seed's default"
        );
        assert_eq!(from_vars.database(), "metrics");

        let nothing = resolve_target(None, &Environment::default()).unwrap();
        assert_eq!(nothing.origin, TargetOrigin::BuiltInDefault);
        assert_eq!(
            nothing.redacted(),
            "postgresql://metrics:***@localhost:5432/metrics"
        );
    }

    #[test]
    fn db_variables_carry_the_password_without_showing_it() {
        let env = Environment::from_pairs([("DB_PASSWORD", "pa ss@word/?")]);
        let target = resolve_target(None, &env).unwrap();
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
        let env = Environment::from_pairs([("DATABASE_URL", ""), ("DB_HOST", "")]);
        let target = resolve_target(None, &env).unwrap();
        assert_eq!(target.origin, TargetOrigin::BuiltInDefault);
    }
}
