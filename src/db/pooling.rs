//! Whether a connection is a server session of its own, or goes through a transaction-pooling
//! proxy (pgbouncer with `pool_mode = transaction`), where each transaction may land on another
//! server connection. Nearly everything metricsctl does is one transaction at a time and works
//! either way; work that keeps state between transactions — the online conversion holds a session
//! advisory lock for its whole run — needs a session of its own, and refuses before it changes
//! anything when it has none.
//!
//! The probe, with no lock and nothing but a harmless setting left anywhere:
//! 1. this connection notes a marker in its server session and which server process it is on;
//! 2. a second connection opens a transaction and keeps it: a transaction pool that hands idle
//!    server connections out most-recently-used first gives it the one just released;
//! 3. this connection asks again. On a session of its own (direct, or a session pool) it is
//!    still on its server process with its marker, and the second connection is on another one.
//!    Behind a transaction pool the second connection got this one's server process, or this one
//!    moved, lost its marker, or had to wait for the second to let go.

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
    if has_own_server_session(session)? {
        return Ok(());
    }
    Err(Error::new(
        What::Refused,
        anyhow!(
            "this connection goes through a transaction-pooling proxy (pgbouncer with \
             pool_mode = transaction, say): consecutive transactions land on different server \
             connections, and {what} keeps a lock on one server session from start to end. \
             Nothing was changed; run it against the server directly (or through a \
             session-pooling port)"
        ),
    ))
}

/// The probe described in the module's documentation.
pub fn has_own_server_session(session: &mut Session) -> Result<bool> {
    let token = format!("{}-{:?}", std::process::id(), Instant::now());
    let broke = |e: postgres::Error| Error::new(What::Unreachable, e);
    // The marker is the session's (set_config's `false`): it outlives the pinned transaction.
    let first = session
        .write(|tx| tx.row(queries::SESSION_PROBE_MARK.sql(), &[&token]))
        .map_err(broke)?;
    let first_pid: i32 = first.get("backend_pid");

    let (held, holding) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let target = session.target().clone();
    let other = thread::spawn(move || -> Option<i32> {
        let mut client = crate::db::connect(&target, Duration::from_secs(10)).ok()?;
        let mut tx = catalog_transaction(&mut client, Some(Duration::from_secs(10))).ok()?;
        let pid: i32 = tx
            .row(queries::SESSION_PROBE_READ.sql(), &[&""])
            .ok()?
            .get("backend_pid");
        let _ = held.send(pid);
        let _ = released.recv_timeout(HOLD);
        let _ = tx.rollback();
        Some(pid)
    });
    let other_pid = holding.recv_timeout(Duration::from_secs(15)).ok();

    let asked = Instant::now();
    let second = session.write(|tx| tx.row(queries::SESSION_PROBE_READ.sql(), &[&token]));
    let waited = asked.elapsed() >= HOLD.mul_f32(0.9);
    let _ = release.send(());
    let _ = other.join();
    let second = second.map_err(broke)?;
    let (second_pid, marked): (i32, bool) = (second.get("backend_pid"), second.get("marked"));
    let own = other_pid.is_some_and(|pid| pid != first_pid)
        && second_pid == first_pid
        && marked
        && !waited;
    if own {
        let _ = session.write(|tx| tx.row(queries::SESSION_PROBE_MARK.sql(), &[&""]));
    }
    Ok(own)
}
