//! One database to talk to: a parsed connection string plus its TLS policy, and the only
//! place that turns it back into text — always without the password.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context as _, bail};
use postgres::config::Host;

use crate::tls::{RootCerts, SslMode, TlsPolicy};

/// The seed's connection string, used when nothing else is configured.
pub const DEFAULT_DATABASE_URL: &str = "postgresql://metrics:metrics@localhost:5432/metrics";

/// Where the connection settings came from, so messages can say what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetOrigin {
    Flag,
    DatabaseUrlEnv,
    DbVariables,
    BuiltInDefault,
    Sandbox,
}

impl TargetOrigin {
    pub fn describe(self) -> &'static str {
        match self {
            TargetOrigin::Flag => "--database-url",
            TargetOrigin::DatabaseUrlEnv => "DATABASE_URL",
            TargetOrigin::DbVariables => "DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME",
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
    pub home: Option<PathBuf>,
    pub os_user: Option<String>,
}

#[derive(Clone)]
pub struct DatabaseTarget {
    pub config: postgres::Config,
    pub tls: TlsPolicy,
    pub origin: TargetOrigin,
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never derive Debug here: postgres::Config would be one refactor away from the password.
        write!(f, "DatabaseTarget({})", self.redacted())
    }
}

impl DatabaseTarget {
    /// Parses a `postgresql://` URL or a `key=value` connection string.
    pub fn parse(
        connection_string: &str,
        origin: TargetOrigin,
        defaults: &TlsDefaults,
    ) -> anyhow::Result<DatabaseTarget> {
        let parse = || -> anyhow::Result<DatabaseTarget> {
            let parts = split_tls_parameters(connection_string)?;
            let mut config = postgres::Config::from_str(&parts.rest)?;
            complete_like_libpq(&mut config, defaults);
            let tls = tls_policy(parts.sslmode, parts.sslrootcert, defaults)?;
            config.ssl_mode(tls.mode.protocol_mode());
            Ok(DatabaseTarget {
                config,
                tls,
                origin,
            })
        };
        parse().with_context(|| {
            format!(
                "invalid connection string from {}: {}",
                origin.describe(),
                redact(connection_string)
            )
        })
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
        let tls = tls_policy(None, None, defaults)?;
        config.ssl_mode(tls.mode.protocol_mode());
        Ok(DatabaseTarget {
            config,
            tls,
            origin: TargetOrigin::DbVariables,
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

fn tls_policy(
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    defaults: &TlsDefaults,
) -> anyhow::Result<TlsPolicy> {
    let mode = match sslmode.or_else(|| defaults.sslmode.clone()) {
        Some(value) => SslMode::parse(&value)?,
        None => SslMode::Prefer,
    };
    let root_certs = match sslrootcert.or_else(|| defaults.sslrootcert.clone()) {
        Some(value) if value == "system" => RootCerts::System,
        Some(value) => RootCerts::File(PathBuf::from(value)),
        None => match &defaults.home {
            Some(home) => RootCerts::DefaultFile(home.join(".postgresql").join("root.crt")),
            None => RootCerts::None,
        },
    };
    Ok(TlsPolicy { mode, root_certs })
}

/// A connection string with the TLS parameters rust-postgres does not understand taken out.
struct ConnectionParts {
    rest: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

const TLS_PARAMETERS: [&str; 2] = ["sslmode", "sslrootcert"];

fn split_tls_parameters(connection_string: &str) -> anyhow::Result<ConnectionParts> {
    let mut parts = ConnectionParts {
        rest: String::new(),
        sslmode: None,
        sslrootcert: None,
    };
    let mut take = |key: &str, value: String| match key {
        "sslmode" => parts.sslmode = Some(value),
        _ => parts.sslrootcert = Some(value),
    };
    let trimmed = connection_string.trim();
    if is_url(trimmed) {
        let (base, query) = match trimmed.split_once('?') {
            Some((base, query)) => (base, query),
            None => (trimmed, ""),
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if TLS_PARAMETERS.contains(&key) {
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
            if TLS_PARAMETERS.contains(&key.as_str()) {
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
            bail!("expected \"=\" after {key:?}");
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => bail!("unterminated quoted value for {key:?}"),
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

/// Hides the password in a raw connection string, for the rare message that must quote one
/// that could not be parsed.
pub fn redact(connection_string: &str) -> String {
    let s = connection_string.trim();
    if is_url(s) {
        let scheme_end = s.find("://").map(|i| i + 3).unwrap_or(0);
        let authority_end = s[scheme_end..]
            .find(['/', '?'])
            .map(|i| scheme_end + i)
            .unwrap_or(s.len());
        let authority = &s[scheme_end..authority_end];
        let authority = match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***{}", &authority[at..]),
                    None => authority.to_string(),
                }
            }
            None => authority.to_string(),
        };
        let tail = redact_password_parameter(&s[authority_end..], '&');
        format!("{}{authority}{tail}", &s[..scheme_end])
    } else {
        redact_password_parameter(s, ' ')
    }
}

fn redact_password_parameter(s: &str, separator: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("password") {
        let after = &rest[pos + "password".len()..];
        let trimmed = after.trim_start();
        let at_word_start = pos == 0 || !rest[..pos].ends_with(|c: char| c.is_alphanumeric());
        if at_word_start && trimmed.starts_with('=') {
            out.push_str(&rest[..pos]);
            out.push_str("password=***");
            let value = trimmed[1..].trim_start();
            let consumed = if let Some(quoted) = value.strip_prefix('\'') {
                let mut end = quoted.len();
                let mut escaped = false;
                for (i, c) in quoted.char_indices() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '\'' => {
                            end = i + 1;
                            break;
                        }
                        _ => {}
                    }
                }
                1 + end.min(quoted.len())
            } else {
                value
                    .find(|c: char| c == separator || c.is_whitespace())
                    .unwrap_or(value.len())
            };
            rest = &value[consumed..];
        } else {
            out.push_str(&rest[..pos + "password".len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
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

    #[test]
    fn redact_handles_urls_and_keyword_strings() {
        assert_eq!(
            redact("postgresql://u:p%40ss@h:1/db?password=x&sslmode=require"),
            "postgresql://u:***@h:1/db?password=***&sslmode=require"
        );
        assert_eq!(
            redact("host=h password='a b\\' c' user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact("host=h password = x user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact("postgresql://u@h/db"),
            "postgresql://u@h/db",
            "nothing to hide"
        );
    }
}
