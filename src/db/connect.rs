//! Connecting (with one clear line when it fails) and advisory locks.

use std::io;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use postgres::Client;
use postgres::error::SqlState;

use crate::db::queries;
use crate::db::session::{Session, Tx};
use crate::db::target::{DatabaseTarget, TargetOrigin};
pub use crate::error::describe_session_error;
use crate::error::{Error, Result, What, error_chain, find_io_error};
use crate::text::{escape_control, shell_quote};

/// Shown in pg_stat_activity, so a blocked operator can see who holds a lock.
pub const APPLICATION_NAME: &str = "metricsctl";

/// Connects, bounding the whole attempt (TCP, TLS and authentication) by `timeout`.
/// Every failure is "could not run" and says where, why and what to try — never the password.
pub fn connect(target: &DatabaseTarget, timeout: Duration) -> Result<Client> {
    let tls = target.tls.connector().map_err(|e| {
        Error::new(
            What::Unreachable,
            e.context(format!(
                "cannot connect to PostgreSQL at {}",
                target.endpoint()
            )),
        )
    })?;
    let mut config = target.config.clone();
    config.connect_timeout(timeout);
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    // rust-postgres bounds only the TCP connect; a server that accepts and then never answers
    // would hang an operator's shell, so the whole attempt runs on a thread we can stop waiting for.
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(config.connect(tls));
    });
    let outcome = match receiver.recv_timeout(timeout + Duration::from_millis(250)) {
        Ok(outcome) => outcome.map_err(|e| explain_connect_error(target, timeout, &e)),
        Err(_) => Err(connect_failure(
            target,
            &format!("no answer within {}", humantime::format_duration(timeout)),
            "Check the host, port and firewall, or raise --connect-timeout.",
        )),
    };
    outcome.map_err(|e| Error::new(What::Unreachable, e))
}

fn connect_failure(target: &DatabaseTarget, cause: &str, hint: &str) -> anyhow::Error {
    let unconfigured = if target.origin == TargetOrigin::BuiltInDefault {
        " No database is configured, so the seed's default was tried: pass --database-url, set \
         DATABASE_URL, the DB_* or the PG* variables, or run `metricsctl demo` for a throwaway database."
    } else {
        ""
    };
    anyhow!(
        "cannot connect to PostgreSQL at {} (database \"{}\", user \"{}\", from {}): {cause}. {hint}{unconfigured}",
        target.endpoint(),
        target.database(),
        target.user(),
        target.origin.describe(),
    )
}

/// What to do when the server itself refused the connection.
fn server_refusal_hint(target: &DatabaseTarget, code: &SqlState, message: &str) -> String {
    let origin = target.origin.describe();
    if message.contains("certificate") {
        return "The server asks for a client certificate (pg_hba.conf says cert): give it with \
                sslcert= and sslkey= in the connection string, PGSSLCERT and PGSSLKEY, or \
                ~/.postgresql/postgresql.crt and postgresql.key (the key readable by you alone), \
                signed by a CA the server's ssl_ca_file trusts, its CN the user name."
            .to_string();
    }
    if message.contains("unsupported startup parameter") {
        // pgbouncer's words: it passes on only the startup parameters it knows.
        return "A connection pooler in front of the server (pgbouncer) refused a startup \
                parameter of this connection: `options` comes from PGOPTIONS or options= in the \
                connection string. Set such settings on the role instead (ALTER ROLE ... SET \
                search_path = ...), which every server connection of it gets, or connect to the \
                server directly."
            .to_string();
    }
    match *code {
        SqlState::INVALID_PASSWORD => target.password_hint(),
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION => format!(
            "Check the user name in {origin}, and that pg_hba.conf admits this user from this host."
        ),
        SqlState::INVALID_CATALOG_NAME => format!(
            "Create it (createdb -h {} -p {} -U {} {}) or name an existing database in {origin}.",
            shell_quote(&host_of(target)),
            port_of(target),
            shell_quote(target.user()),
            shell_quote(target.database())
        ),
        SqlState::TOO_MANY_CONNECTIONS => {
            "The server is at max_connections; try again shortly.".to_string()
        }
        SqlState::CANNOT_CONNECT_NOW => {
            "The server is starting up or shutting down; try again in a moment.".to_string()
        }
        _ => format!("Check the settings in {origin}."),
    }
}

fn explain_connect_error(
    target: &DatabaseTarget,
    timeout: Duration,
    error: &postgres::Error,
) -> anyhow::Error {
    let origin = target.origin.describe();
    if let Some(db) = error.as_db_error() {
        return connect_failure(
            target,
            &escape_control(db.message()),
            &server_refusal_hint(target, db.code(), db.message()),
        );
    }
    let chain: Vec<String> = error_chain(error);
    let text = chain.join(": ");
    if let Some(io_error) = find_io_error(error) {
        match io_error.kind() {
            io::ErrorKind::ConnectionRefused => {
                return connect_failure(
                    target,
                    "connection refused",
                    &format!(
                        "Is PostgreSQL running and listening on that address? Check the host and port in {origin}."
                    ),
                );
            }
            io::ErrorKind::TimedOut => {
                return connect_failure(
                    target,
                    &format!("no answer within {}", humantime::format_duration(timeout)),
                    "Check the host, port and firewall, or raise --connect-timeout.",
                );
            }
            _ => {}
        }
    }
    if text.contains("failed to lookup address") || text.contains("Name or service not known") {
        return connect_failure(
            target,
            "host name not found",
            &format!("Check the host name in {origin}."),
        );
    }
    if let Some(tls) = explain_tls_failure(target, &chain) {
        return tls;
    }
    if text.contains("password missing") {
        return connect_failure(
            target,
            "the server asks for a password and none was given",
            &target.password_hint(),
        );
    }
    connect_failure(target, &text, &format!("Check the settings in {origin}."))
}

/// A connection that failed over TLS: the server offers none, or its certificate was refused.
fn explain_tls_failure(target: &DatabaseTarget, chain: &[String]) -> Option<anyhow::Error> {
    let text = chain.join(": ");
    if text.contains("does not support TLS") {
        return Some(connect_failure(
            target,
            &format!(
                "the server does not offer TLS, and sslmode={} requires it",
                target.tls.mode
            ),
            "Use sslmode=prefer or sslmode=disable, or enable ssl on the server.",
        ));
    }
    if chain.iter().any(|c| c.contains("UnsupportedCertVersion")) {
        return Some(connect_failure(
            target,
            &format!(
                "the server's TLS certificate is X.509 version 1 and is not the certificate the \
                 root certificate file names, so sslmode={} cannot verify it here: the TLS \
                 library (rustls/webpki) verifies chains of version 3 certificates only",
                target.tls.mode
            ),
            "Give the server a version 3 certificate signed by your CA (CREATE EXTENSION citus \
             makes a self-signed version 1 one when ssl was off), or name that very certificate \
             with sslrootcert= (it is then trusted as itself under verify-ca, and under \
             verify-full when its name is the host's). Without any root certificate (no \
             sslrootcert, PGSSLROOTCERT or ~/.postgresql/root.crt), sslmode=require encrypts \
             without verifying, as libpq's require does.",
        ));
    }
    if chain
        .iter()
        .any(|c| c.contains("certificate") && !c.contains("client certificate"))
    {
        return Some(connect_failure(
            target,
            &format!("the server's TLS certificate was rejected ({text})"),
            "Name the CA that signed it with sslrootcert=/path/to/root.crt; or, where encryption \
             without verification will do, use sslmode=require with no root certificate given \
             (no sslrootcert, PGSSLROOTCERT or ~/.postgresql/root.crt).",
        ));
    }
    None
}

/// When the session's statement_timeout cancelled a statement: who set it and what to change,
/// since metricsctl never raises it.
pub fn statement_timeout_advice(
    error: &postgres::Error,
    timeout: &crate::db::facts::SessionTimeout,
) -> Option<String> {
    let db = error.as_db_error()?;
    (db.code() == &SqlState::QUERY_CANCELED && db.message().contains("statement timeout")).then(
        || {
            let (who, change) = timeout.who_set_it();
            let value = if timeout.text.is_empty() {
                String::new()
            } else {
                format!(" ({})", timeout.text)
            };
            format!(
                "{who}{value} cancelled it; metricsctl never raises it (it only sets a lower one \
                 within --timeout): {change}"
            )
        },
    )
}

fn host_of(target: &DatabaseTarget) -> String {
    match target.config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        Some(postgres::config::Host::Unix(dir)) => dir.display().to_string(),
        None => "localhost".to_string(),
    }
}

fn port_of(target: &DatabaseTarget) -> u16 {
    target.config.get_ports().first().copied().unwrap_or(5432)
}

/// Another session holding an advisory lock we want.
#[derive(Debug, Clone)]
pub struct LockHolder {
    pub pid: i32,
    pub application_name: String,
    pub user_name: String,
    /// Where it connects from, and since when: `None` where PostgreSQL does not show another
    /// role's session to this one (a monitoring role without pg_read_all_stats).
    pub client: Option<String>,
    pub connected_seconds: Option<i64>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // application_name is whatever the other client chose: no control characters.
        write!(
            f,
            "pid {} (application \"{}\", user \"{}\"",
            self.pid,
            escape_control(&self.application_name),
            escape_control(&self.user_name),
        )?;
        match (&self.client, self.connected_seconds) {
            (Some(client), Some(seconds)) => {
                write!(f, ", from {client}, connected {seconds}s ago)")
            }
            _ => write!(
                f,
                "; more is hidden from this role without pg_read_all_stats)"
            ),
        }
    }
}

/// Takes a session-level advisory lock on `session` itself, waiting up to `timeout` and
/// calling `on_wait` once with the holder if it is taken. The work done under the lock must run
/// on the same session: if that session dies, the lock and the work end together, and no run
/// can go on unlocked. Released by [`unlock_session`] or when the session closes. Only for work
/// that checked it has a session of its own (not a transaction pool's): [`crate::db::pooling`].
/// Each try runs in a transaction of its own with the search path pinned; the lock outlives it.
pub fn lock_session(
    session: &mut Session,
    key: i64,
    what: &str,
    timeout: Duration,
    on_wait: impl FnMut(&LockHolder),
) -> Result<()> {
    let cell = std::cell::RefCell::new(&mut *session);
    wait_for_lock(
        key,
        what,
        timeout,
        None,
        on_wait,
        |key| {
            cell.borrow_mut()
                .write(|tx| tx.row(queries::ADVISORY_LOCK_TRY.sql(), &[&key]))
        },
        |key| {
            cell.borrow_mut().write(|tx| {
                tx.row_opt(queries::ADVISORY_LOCK_HOLDER.sql(), &[&key])
                    .map(|row| row.as_ref().map(LockHolder::from_row))
            })
        },
    )?;
    ensure_lock_is_mine(session, key, what)
}

/// Behind a transaction pool that the probe did not see (`crate::db::pooling`), the lock may have
/// been taken on a server connection this client no longer has: refuse to go on, naming it.
fn ensure_lock_is_mine(session: &mut Session, key: i64, what: &str) -> Result<()> {
    let broke = |e: postgres::Error| Error::new(What::Unreachable, e);
    let mine: bool = session
        .write(|tx| tx.row(queries::ADVISORY_LOCK_MINE.sql(), &[&key]))
        .map_err(broke)?
        .get("mine");
    if mine {
        return Ok(());
    }
    let holder = session
        .write(|tx| {
            tx.row_opt(queries::ADVISORY_LOCK_HOLDER.sql(), &[&key])
                .map(|row| row.as_ref().map(LockHolder::from_row))
        })
        .map_err(broke)?;
    let held = holder
        .map(|h| {
            format!(
                "it is held by {h} until that connection closes (SELECT \
                 pg_terminate_backend({}) ends it)",
                h.pid
            )
        })
        .unwrap_or_else(|| "it is no longer held".to_string());
    Err(Error::new(
        What::Refused,
        anyhow!(
            "the {what} lock was taken on a server connection this one no longer has: it goes \
             through a transaction-pooling proxy. Nothing else was changed; {held}. Run it \
             against the server directly"
        ),
    ))
}

/// Takes an advisory lock for the rest of the transaction `tx`, waiting as [`lock_session`] does.
/// It ends with the transaction whatever happens, so it is safe behind a transaction pool.
pub fn lock_transaction(
    tx: &mut Tx<'_>,
    key: i64,
    what: &str,
    timeout: Duration,
    on_wait: impl FnMut(&LockHolder),
) -> Result<()> {
    let tx = std::cell::RefCell::new(tx);
    wait_for_lock(
        key,
        what,
        timeout,
        Some("--lock-timeout"),
        on_wait,
        |key| {
            tx.borrow_mut()
                .row(queries::ADVISORY_XACT_LOCK_TRY.sql(), &[&key])
        },
        |key| {
            tx.borrow_mut()
                .row_opt(queries::ADVISORY_LOCK_HOLDER.sql(), &[&key])
                .map(|row| row.as_ref().map(LockHolder::from_row))
        },
    )
}

/// Tries `try_lock` until it succeeds, `timeout` passes (`raise_with` names the flag that sets
/// it) or the run is stopped (--timeout, a signal).
fn wait_for_lock(
    key: i64,
    what: &str,
    timeout: Duration,
    raise_with: Option<&str>,
    mut on_wait: impl FnMut(&LockHolder),
    mut try_lock: impl FnMut(i64) -> std::result::Result<postgres::Row, postgres::Error>,
    mut holder_of: impl FnMut(i64) -> std::result::Result<Option<LockHolder>, postgres::Error>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut told = false;
    let session_broke = |e: postgres::Error| Error::new(What::Unreachable, e);
    loop {
        let acquired: bool = try_lock(key).map_err(session_broke)?.get(0);
        if acquired {
            return Ok(());
        }
        let holder = holder_of(key).map_err(session_broke)?;
        if !told && let Some(holder) = &holder {
            on_wait(holder);
            told = true;
        }
        let now = Instant::now();
        let who = || {
            holder
                .as_ref()
                .map(|h| format!("held by {h}"))
                .unwrap_or_else(|| "held by a session that has just ended".to_string())
        };
        if crate::db::interrupt::is_stopped() {
            return Err(Error::new(
                What::LockTimeout,
                anyhow!("stopped while waiting for the {what} lock, {}", who()),
            ));
        }
        if now >= deadline {
            let raise = raise_with
                .map(|flag| format!(" or raise {flag}"))
                .unwrap_or_default();
            return Err(Error::new(
                What::LockTimeout,
                anyhow!(
                    "gave up waiting for the {what} lock after {}: {}. If that session is stuck, \
                     end it with SELECT pg_terminate_backend(pid); otherwise wait for it{raise}.",
                    humantime::format_duration(timeout),
                    who()
                ),
            ));
        }
        thread::sleep(Duration::from_millis(100).min(deadline - now));
    }
}

/// Releases a lock taken with [`lock_session`].
pub fn unlock_session(session: &mut Session, key: i64) -> std::result::Result<(), postgres::Error> {
    session.write(|tx| tx.row(queries::ADVISORY_UNLOCK.sql(), &[&key]))?;
    Ok(())
}

impl LockHolder {
    pub(crate) fn from_row(row: &postgres::Row) -> LockHolder {
        let text = |column: &str| row.try_get::<_, Option<String>>(column).ok().flatten();
        LockHolder {
            pid: row.try_get("pid").unwrap_or_default(),
            application_name: text("application_name").unwrap_or_default(),
            user_name: text("user_name").unwrap_or_default(),
            client: text("client"),
            connected_seconds: row
                .try_get::<_, Option<i64>>("connected_seconds")
                .ok()
                .flatten(),
        }
    }
}

/// The sessions holding a lock on a table, for a message after a lock timeout.
pub fn table_lock_holders(
    tx: &mut Tx<'_>,
    table: &str,
) -> std::result::Result<Vec<LockHolder>, postgres::Error> {
    Ok(tx
        .rows(queries::TABLE_LOCK_HOLDERS.sql(), &[&table])?
        .iter()
        .map(LockHolder::from_row)
        .collect())
}

/// "held by pid 123 (application ...), pid 456 (...)", or a note that they are gone.
pub fn describe_holders(holders: &[LockHolder]) -> String {
    if holders.is_empty() {
        return "held by a session that has ended since".to_string();
    }
    let list: Vec<String> = holders.iter().map(ToString::to_string).collect();
    format!("held by {}", list.join(", "))
}

/// Bounds how long the rest of this transaction waits for table locks.
pub fn set_lock_timeout(
    tx: &mut Tx<'_>,
    timeout: Duration,
) -> std::result::Result<(), postgres::Error> {
    let milliseconds = timeout.as_millis().max(1).to_string();
    tx.row(queries::SET_LOCAL_LOCK_TIMEOUT.sql(), &[&milliseconds])?;
    Ok(())
}
