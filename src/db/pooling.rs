//! Whether a connection is a server session of its own, or goes through a transaction-pooling
//! proxy (pgbouncer with `pool_mode = transaction`), where each transaction may land on another
//! server connection. Nearly everything metricsctl does is one transaction at a time and works
//! either way; work that keeps state between transactions — the online conversion holds a session
//! advisory lock for its whole run — needs a session of its own, and refuses before it changes
//! anything when it has none.
//!
//! The probe, with no lock and nothing but a harmless setting left anywhere:
//! 1. this connection notes a marker in its server session and which server process it is on;
//! 2. it asks again at once: a pool that hands out the connection idle longest (pgbouncer's
//!    `server_round_robin`) gives it another one, without the marker;
//! 3. a second connection opens a transaction and keeps it: a pool that hands out the connection
//!    idle shortest (pgbouncer's default) gives it the one just released;
//! 4. this connection asks a third time. On a session of its own (direct, or a session pool) it
//!    is still on its server process with its marker each time, and the second connection is on
//!    another one. Behind a transaction pool the second connection got this one's server process,
//!    or this one moved, lost its marker, or had to wait for the second to let go. Where the
//!    second connection gets no answer (a pooler with nothing free), nothing can be told, and
//!    that is said.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::db::queries;
use crate::db::session::{Session, catalog_transaction};
use crate::error::{Error, Result, What};
use anyhow::anyhow;

/// How long the second connection keeps its transaction open if this one cannot get through.
const HOLD: Duration = Duration::from_millis(1500);

/// Refuses (exit 3, nothing changed) unless `session` is a server session of its own.
pub fn ensure_own_server_session(session: &mut Session, what: &str) -> Result<()> {
    let refusal = match probe(session)? {
        Probe::Own => return Ok(()),
        Probe::Pooled => format!(
            "this connection goes through a transaction-pooling proxy (pgbouncer with \
             pool_mode = transaction, say): consecutive transactions land on different server \
             connections, and {what} keeps a lock on one server session from start to end. \
             Nothing was changed; run it against the server directly (or through a \
             session-pooling port)"
        ),
        Probe::NoSecondConnection => format!(
            "could not tell whether this connection is a server session of its own: a second \
             connection got no answer within {} (a connection pooler with no server \
             connection free?), and {what} keeps a lock on one server session from start to \
             end. Nothing was changed; run it against the server directly, or when the pool \
             has a connection to spare",
            humantime::format_duration(SECOND_CONNECTION_WAIT)
        ),
    };
    Err(Error::new(What::Refused, anyhow!(refusal)))
}

/// What the probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A server session of its own: direct, or a session pool.
    Own,
    /// Consecutive transactions may land on different server connections.
    Pooled,
    /// A second connection got no answer: nothing can be told.
    NoSecondConnection,
}

/// How long the second connection may take to answer.
const SECOND_CONNECTION_WAIT: Duration = Duration::from_secs(5);

/// The probe described in the module's documentation, in two rounds: one with nothing between
/// the transactions (a pool that hands out the connection idle longest gives the next one another
/// connection), one with a second connection holding a transaction between them (a pool that
/// hands out the connection idle shortest gives it this one's).
pub fn probe(session: &mut Session) -> Result<Probe> {
    let token = format!("{}-{:?}", std::process::id(), Instant::now());
    let broke = |e: postgres::Error| Error::new(What::Unreachable, e);
    // The marker is the session's (set_config's `false`): it outlives the pinned transaction.
    let first = session
        .write(|tx| tx.row(queries::SESSION_PROBE_MARK.sql(), &[&token]))
        .map_err(broke)?;
    let first_pid: i32 = first.get("backend_pid");
    let still_here = |row: &postgres::Row| {
        row.get::<_, i32>("backend_pid") == first_pid && row.get::<_, bool>("marked")
    };
    let next = session
        .write(|tx| tx.row(queries::SESSION_PROBE_READ.sql(), &[&token]))
        .map_err(broke)?;
    let outcome = if !still_here(&next) {
        Probe::Pooled
    } else {
        probe_beside_a_second_connection(session, &token, still_here)?
    };
    if outcome == Probe::Own {
        let _ = session.write(|tx| tx.row(queries::SESSION_PROBE_MARK.sql(), &[&""]));
    }
    Ok(outcome)
}

/// The second round: a second connection keeps a transaction open while this one asks again.
fn probe_beside_a_second_connection(
    session: &mut Session,
    token: &str,
    still_here: impl Fn(&postgres::Row) -> bool,
) -> Result<Probe> {
    let (held, holding) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let target = session.target().clone();
    // Not joined: behind a pooler with no connection free it waits there until the pooler gives
    // up on it, and must not keep this run waiting too.
    thread::spawn(move || {
        let Ok(mut client) = crate::db::connect(&target, SECOND_CONNECTION_WAIT) else {
            return;
        };
        let Ok(mut tx) = catalog_transaction(&mut client, Some(SECOND_CONNECTION_WAIT)) else {
            return;
        };
        let Ok(row) = tx.row(queries::SESSION_PROBE_READ.sql(), &[&""]) else {
            return;
        };
        let _ = held.send(row.get::<_, i32>("backend_pid"));
        let _ = released.recv_timeout(HOLD);
        let _ = tx.rollback();
    });
    let Ok(other_pid) = holding.recv_timeout(SECOND_CONNECTION_WAIT * 2) else {
        return Ok(Probe::NoSecondConnection);
    };
    let asked = Instant::now();
    let again = session.write(|tx| tx.row(queries::SESSION_PROBE_READ.sql(), &[&token]));
    let waited = asked.elapsed() >= HOLD.mul_f32(0.9);
    let _ = release.send(());
    let again = again.map_err(|e| Error::new(What::Unreachable, e))?;
    let own = still_here(&again) && other_pid != again.get::<_, i32>("backend_pid") && !waited;
    Ok(if own { Probe::Own } else { Probe::Pooled })
}
