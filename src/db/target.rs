//! One database to talk to: a parsed connection string plus its TLS policy, and the only
//! place that turns it back into text — always without the password.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context as _, anyhow, bail};
use postgres::config::Host;

use crate::db::tls::{ClientCertificate, RootCerts, SslMode, TlsPolicy};

/// The seed's connection string, used when nothing else is configured.
pub const DEFAULT_DATABASE_URL: &str = "postgresql://metrics:metrics@localhost:5432/metrics";

/// Where the connection settings came from, so messages can say what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetOrigin {
    Flag,
    DatabaseUrlEnv,
    DbVariables,
    /// libpq's PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (nothing else configured).
    PgVariables,
    BuiltInDefault,
    Sandbox,
}

impl TargetOrigin {
    pub fn describe(self) -> &'static str {
        match self {
            TargetOrigin::Flag => "--database-url",
            TargetOrigin::DatabaseUrlEnv => "DATABASE_URL",
            TargetOrigin::DbVariables => "DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME",
            TargetOrigin::PgVariables => "PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE",
            TargetOrigin::BuiltInDefault => "the built-in default",
            TargetOrigin::Sandbox => "the throwaway local PostgreSQL",
        }
    }
}

/// Settings that libpq takes from the environment when the connection string is silent.
#[derive(Debug, Clone, Default)]
pub struct TlsDefaults {
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    /// `PGSSLCERT` and `PGSSLKEY`.
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    pub home: Option<PathBuf>,
    pub os_user: Option<String>,
}

/// Where the password came from, so that a refused one can be traced to where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// No password: the server may not ask for one.
    None,
    /// In the connection string (or the `DB_PASSWORD` variable) that the origin names.
    Given,
    /// The `PGPASSWORD` variable.
    PgPasswordVariable,
    /// A line of the password file (`PGPASSFILE`, `passfile=` or `~/.pgpass`).
    PasswordFile { path: PathBuf, line: usize },
}

#[derive(Clone)]
pub struct DatabaseTarget {
    pub config: postgres::Config,
    pub tls: TlsPolicy,
    pub origin: TargetOrigin,
    pub password_source: PasswordSource,
    /// libpq's `passfile` keyword, when the string names one.
    pub passfile: Option<PathBuf>,
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never derive Debug here: postgres::Config would be one refactor away from the password.
        write!(f, "DatabaseTarget({})", self.redacted())
    }
}

impl DatabaseTarget {
    /// Parses a `postgresql://` URL or a `key=value` connection string; an unset host is
    /// localhost and an unset user the operating-system user, as in libpq.
    pub fn parse(
        connection_string: &str,
        origin: TargetOrigin,
        defaults: &TlsDefaults,
    ) -> anyhow::Result<DatabaseTarget> {
        let mut target = DatabaseTarget::parse_unfilled(connection_string, origin, defaults)?;
        target.complete(defaults);
        Ok(target)
    }

    /// Parses a connection string and leaves unset what it does not say, so the environment
    /// can fill it. A string that cannot be parsed is never echoed, not even redacted: the
    /// password may sit where the parser expected something else. The message says why, by
    /// position and keyword only.
    pub fn parse_unfilled(
        connection_string: &str,
        origin: TargetOrigin,
        defaults: &TlsDefaults,
    ) -> anyhow::Result<DatabaseTarget> {
        let parse = || -> anyhow::Result<DatabaseTarget> {
            let parts = split_tls_parameters(connection_string)?;
            let mut config = postgres::Config::from_str(&parts.rest)
                .map_err(|e| anyhow!(explain_parse_error(&e)))?;
            let tls = tls_policy(&parts, defaults)?;
            config.ssl_mode(tls.mode.protocol_mode());
            let password_source = if config.get_password().is_some() {
                PasswordSource::Given
            } else {
                PasswordSource::None
            };
            Ok(DatabaseTarget {
                config,
                tls,
                origin,
                password_source,
                passfile: parts.passfile.map(PathBuf::from),
            })
        };
        parse().map_err(|e| {
            anyhow!(
                "invalid connection string from {} (not shown: it may hold a password): {e:#}",
                origin.describe()
            )
        })
    }

    /// libpq's last defaults: host localhost, user the operating-system user.
    pub fn complete(&mut self, defaults: &TlsDefaults) {
        complete_like_libpq(&mut self.config, defaults);
    }

    /// What to check when the server refused the password.
    pub fn password_hint(&self) -> String {
        match &self.password_source {
            PasswordSource::Given => {
                format!("Check the password given in {}.", self.origin.describe())
            }
            PasswordSource::PgPasswordVariable => "Check the password in PGPASSWORD.".to_string(),
            PasswordSource::PasswordFile { path, line } => format!(
                "Check the password on line {line} of the password file {}.",
                path.display()
            ),
            PasswordSource::None => format!(
                "No password was given: add it to {}, set PGPASSWORD, or put it in ~/.pgpass.",
                self.origin.describe()
            ),
        }
    }

    /// Builds a target from the seed's `DB_*` variables; unset ones take the seed's defaults.
    pub fn from_parts(
        host: &str,
        port: u16,
        user: &str,
        password: Option<&str>,
        dbname: &str,
        defaults: &TlsDefaults,
    ) -> anyhow::Result<DatabaseTarget> {
        let mut config = postgres::Config::new();
        config.host(host).port(port).user(user).dbname(dbname);
        if let Some(password) = password {
            config.password(password);
        }
        let tls = tls_policy(&ConnectionParts::default(), defaults)?;
        config.ssl_mode(tls.mode.protocol_mode());
        Ok(DatabaseTarget {
            config,
            tls,
            origin: TargetOrigin::DbVariables,
            password_source: if password.is_some() {
                PasswordSource::Given
            } else {
                PasswordSource::None
            },
            passfile: None,
        })
    }

    /// `host:port` of the first host, for messages.
    pub fn endpoint(&self) -> String {
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) if host.contains(':') => format!("[{host}]:{port}"),
            Some(Host::Tcp(host)) => format!("{host}:{port}"),
            Some(Host::Unix(dir)) => format!("{}/.s.PGSQL.{port}", dir.display()),
            None => format!("localhost:{port}"),
        }
    }

    pub fn database(&self) -> &str {
        self.config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("")
    }

    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("")
    }

    /// The target as a URL with the password replaced by `***`: the only way it is ever shown.
    pub fn redacted(&self) -> String {
        let password = if self.config.get_password().is_some() {
            ":***"
        } else {
            ""
        };
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = self
                    .config
                    .get_ports()
                    .get(i)
                    .or(self.config.get_ports().first())
                    .copied()
                    .unwrap_or(5432);
                match host {
                    Host::Tcp(h) if h.contains(':') => format!("[{h}]:{port}"),
                    Host::Tcp(h) => format!("{h}:{port}"),
                    Host::Unix(dir) => format!("{}:{port}", dir.display()),
                }
            })
            .collect();
        let mut url = format!(
            "postgresql://{}{password}@{}/{}",
            self.user(),
            hosts.join(","),
            self.database()
        );
        if self.tls.mode != SslMode::Prefer {
            url.push_str(&format!("?sslmode={}", self.tls.mode));
        }
        url
    }
}

fn complete_like_libpq(config: &mut postgres::Config, defaults: &TlsDefaults) {
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        config.host("localhost");
    }
    if config.get_user().is_none()
        && let Some(user) = &defaults.os_user
    {
        config.user(user);
    }
}

fn tls_policy(parts: &ConnectionParts, defaults: &TlsDefaults) -> anyhow::Result<TlsPolicy> {
    let mode = match parts.sslmode.clone().or_else(|| defaults.sslmode.clone()) {
        Some(value) => SslMode::parse(&value)?,
        None => SslMode::Prefer,
    };
    let root_certs = match parts
        .sslrootcert
        .clone()
        .or_else(|| defaults.sslrootcert.clone())
    {
        Some(value) if value == "system" => RootCerts::System,
        Some(value) => RootCerts::File(PathBuf::from(value)),
        None => match &defaults.home {
            Some(home) => RootCerts::DefaultFile(home.join(".postgresql").join("root.crt")),
            None => RootCerts::None,
        },
    };
    // libpq's precedence for each: the string, then the environment, then ~/.postgresql.
    let client = ClientCertificate {
        cert: parts
            .sslcert
            .clone()
            .or_else(|| defaults.sslcert.clone())
            .map(PathBuf::from),
        key: parts
            .sslkey
            .clone()
            .or_else(|| defaults.sslkey.clone())
            .map(PathBuf::from),
        home: defaults.home.clone(),
    };
    Ok(TlsPolicy {
        mode,
        root_certs,
        client,
    })
}

/// A connection string with the parameters rust-postgres does not understand (TLS, the
/// password file) taken out.
#[derive(Default)]
struct ConnectionParts {
    rest: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    sslcert: Option<String>,
    sslkey: Option<String>,
    passfile: Option<String>,
}

const OUR_PARAMETERS: [&str; 5] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "passfile"];

fn split_tls_parameters(connection_string: &str) -> anyhow::Result<ConnectionParts> {
    let mut parts = ConnectionParts::default();
    let mut take = |key: &str, value: String| match key {
        "sslmode" => parts.sslmode = Some(value),
        "passfile" => parts.passfile = Some(value),
        "sslcert" => parts.sslcert = Some(value),
        "sslkey" => parts.sslkey = Some(value),
        _ => parts.sslrootcert = Some(value),
    };
    let trimmed = connection_string.trim();
    if is_url(trimmed) {
        let trimmed = &check_url_authority(trimmed)?;
        let (base, query) = match trimmed.split_once('?') {
            Some((base, query)) => (base, query),
            None => (trimmed.as_str(), ""),
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if OUR_PARAMETERS.contains(&key) {
                take(key, percent_decode(value)?);
            } else {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok(ConnectionParts { rest, ..parts })
    } else {
        let mut kept = Vec::new();
        for (key, value) in keyword_pairs(trimmed)? {
            if OUR_PARAMETERS.contains(&key.as_str()) {
                take(&key, value);
            } else {
                kept.push(format!(
                    "{key}='{}'",
                    value.replace('\\', "\\\\").replace('\'', "\\'")
                ));
            }
        }
        Ok(ConnectionParts {
            rest: kept.join(" "),
            ..parts
        })
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

/// libpq reads a URL's credentials up to the first `@` before the first `/`; rust-postgres up
/// to the first `@` anywhere. An `@` that is not the one separator would make either take part
/// of a password for a host or a database name, which messages then show: such a URL is
/// refused, with the fix.
fn check_url_authority(url: &str) -> anyhow::Result<String> {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map(|i| scheme_end + i)
        .unwrap_or(url.len());
    let authority = &url[scheme_end..authority_end];
    if authority.matches('@').count() > 1 {
        bail!(
            "the user name or password holds an unencoded '@': percent-encode it as %40 \
             (postgresql://user:p%40ss@host/db)"
        );
    }
    if url[authority_end..].contains('@') {
        bail!(
            "the URL has an '@' after the host: if the password or user name holds a '/' or '?', \
             percent-encode it (%2F, %3F), and write an '@' in a parameter as %40"
        );
    }
    Ok(url.to_string())
}

/// libpq's connection keywords: an unknown one is named only if it is one of these (or one in
/// the wrong case), never echoed otherwise, since a mistyped string may put a password there.
const LIBPQ_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

/// rust-postgres's parse error, without any part of the string that is not a known keyword.
fn explain_parse_error(error: &postgres::Error) -> String {
    let text = error.to_string();
    let unknown = std::error::Error::source(error)
        .map(|s| s.to_string())
        .unwrap_or_else(|| text.clone());
    let Some(option) = unknown
        .strip_prefix("unknown option `")
        .and_then(|rest| rest.strip_suffix('`'))
    else {
        return text
            .strip_prefix("invalid connection string: ")
            .unwrap_or(&text)
            .to_string();
    };
    let lower = option.to_ascii_lowercase();
    if LIBPQ_KEYWORDS.contains(&option) {
        format!("the option {option} is not supported by metricsctl")
    } else if LIBPQ_KEYWORDS.contains(&lower.as_str()) {
        format!("option names are lower case: write {lower}=, not {option}=")
    } else {
        "it names an option libpq does not know (left unnamed: it may be a misplaced password)"
            .to_string()
    }
}

fn percent_decode(value: &str) -> anyhow::Result<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(byte) => out.push(byte),
                None => bail!("bad percent-encoding in URL parameter"),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("URL parameter is not UTF-8")
}

/// Splits libpq's `key=value key='quoted \' value'` syntax.
fn keyword_pairs(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            bail!(
                "word {} is not key=value (neither a postgresql:// URL nor a libpq key=value string)",
                pairs.len() + 1
            );
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => bail!(
                        "the quoted value of parameter {} is never closed",
                        pairs.len() + 1
                    ),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> DatabaseTarget {
        DatabaseTarget::parse(s, TargetOrigin::Flag, &TlsDefaults::default()).unwrap()
    }

    #[test]
    fn redacted_never_shows_the_password() {
        let target = parse("postgresql://metrics:s3cr3t@db.example:6432/metrics");
        let shown = target.redacted();
        assert_eq!(shown, "postgresql://metrics:***@db.example:6432/metrics");
        assert_eq!(target.endpoint(), "db.example:6432");
        assert_eq!(format!("{target:?}").matches("s3cr3t").count(), 0);
    }

    #[test]
    fn verify_modes_are_taken_out_of_the_url_and_kept_in_the_policy() {
        let target = parse(
            "postgres://u:p@h/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x",
        );
        assert_eq!(target.tls.mode, SslMode::VerifyFull);
        assert_eq!(
            target.tls.root_certs,
            RootCerts::File(PathBuf::from("/tmp/ca.pem"))
        );
        assert_eq!(
            target.config.get_ssl_mode(),
            postgres::config::SslMode::Require
        );
        assert_eq!(target.config.get_application_name(), Some("x"));
        assert!(target.redacted().ends_with("?sslmode=verify-full"));
    }

    #[test]
    fn keyword_value_strings_work_too() {
        let target = parse(
            "host=localhost port=5433 user=metrics password='a \\'b' dbname=m sslmode=verify-ca",
        );
        assert_eq!(target.tls.mode, SslMode::VerifyCa);
        assert_eq!(target.endpoint(), "localhost:5433");
        assert_eq!(target.database(), "m");
    }

    #[test]
    fn environment_sslmode_applies_only_when_the_string_is_silent() {
        let defaults = TlsDefaults {
            sslmode: Some("require".into()),
            ..TlsDefaults::default()
        };
        let silent = DatabaseTarget::parse("postgresql://u@h/db", TargetOrigin::Flag, &defaults);
        assert_eq!(silent.unwrap().tls.mode, SslMode::Require);
        let explicit = DatabaseTarget::parse(
            "postgresql://u@h/db?sslmode=disable",
            TargetOrigin::Flag,
            &defaults,
        );
        assert_eq!(explicit.unwrap().tls.mode, SslMode::Disable);
    }

    #[test]
    fn bad_strings_are_reported_without_their_password() {
        let err = DatabaseTarget::parse(
            "postgresql://u:hunter2@h/db?sslmode=sometimes",
            TargetOrigin::DatabaseUrlEnv,
            &TlsDefaults::default(),
        )
        .unwrap_err();
        let message = format!("{err:#}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("DATABASE_URL"), "{message}");
        assert!(message.contains("sslmode"), "{message}");
    }
}
