//! Every run is bounded and cancellable: when its time limit (`--timeout`) is up, or on SIGINT or
//! SIGTERM, PostgreSQL's cancel request goes to every statement this process has open, after
//! asking the server what each was waiting for. The command then fails with that reason
//! ([`stopped`]); if it has not ended a few seconds later, the process exits 3 on its own.
//!
//! The cancel goes from that same observing connection: `pg_cancel_backend` for each server
//! process running one of this run's transactions, named by the transaction's start as well, so
//! that behind a transaction pool a process handed to another client since is left alone. The
//! protocol's cancel request is the fallback where the observer cannot connect: rust-postgres hangs
//! up on it before the server answers, and pgbouncer 1.18 (Debian 12's) forwards it and then
//! crashes (FATAL "bad client state", pgbouncer issue #801), taking every client down with it.
//!
//! Besides the cancel, each transaction's `statement_timeout` is set a little beyond the time left
//! ([`statement_timeout_setting`]), so a statement stops even where no cancel reaches the server.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use postgres::{CancelToken, Client};

use crate::db::queries;
use crate::db::session::catalog_transaction;
use crate::db::target::DatabaseTarget;
use crate::text::escape_control;

/// How long a stopped run may take to end after its statements were cancelled.
const GRACE: Duration = Duration::from_secs(5);
/// The statement timeout is set this far past the time left: the cancel request comes first,
/// with the reason.
const STATEMENT_TIMEOUT_SLACK: Duration = Duration::from_secs(1);
/// How often the watchdog looks for a signal.
const POLL: Duration = Duration::from_millis(25);
/// How long asking the server what a session waits for may take.
const OBSERVER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the run was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// `--timeout` ran out.
    TimedOut(Duration),
    /// SIGINT or SIGTERM.
    Signal(&'static str),
}

/// What stopped the run, and what its statements were waiting for then.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub reason: StopReason,
    /// One line per session that had a statement open: what it waited for, who was in its way.
    pub waiting: Vec<String>,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            StopReason::TimedOut(limit) => write!(
                f,
                "timed out after {} (--timeout)",
                humantime::format_duration(*limit)
            )?,
            StopReason::Signal(name) => write!(f, "interrupted by {name}")?,
        }
        if self.waiting.is_empty() {
            write!(f, "; no statement was running")
        } else {
            write!(
                f,
                "; its statement was cancelled: {}",
                self.waiting.join("; ")
            )
        }
    }
}

struct Entry {
    token: CancelToken,
    target: DatabaseTarget,
    /// The session's latest transaction (behind a pool, each may be on another server process).
    transaction: Option<OwnTransaction>,
}

/// A transaction as pg_stat_activity shows it: its server process and its start.
#[derive(Debug, Clone)]
struct OwnTransaction {
    pid: i32,
    /// `EXTRACT(EPOCH FROM xact_start)`, exact, as text.
    start: String,
}

static SESSIONS: Mutex<Option<HashMap<u64, Entry>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static STOPPED: Mutex<Option<Stopped>> = Mutex::new(None);
static FIRED: AtomicBool = AtomicBool::new(false);
/// The signal received, 0 for none (set by the handler: only an atomic store).
static SIGNALLED: AtomicI32 = AtomicI32::new(0);
static DEADLINE: OnceLock<(Instant, Duration)> = OnceLock::new();
static WATCHDOG: OnceLock<()> = OnceLock::new();

/// A session's place in the registry; dropping it takes the session out.
pub struct Registration {
    id: u64,
}

impl Registration {
    /// Notes the server process a transaction of this session landed on, and its start.
    pub fn note_transaction(&self, pid: i32, start: String) {
        if let Some(entry) = SESSIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|sessions| sessions.get_mut(&self.id))
        {
            entry.transaction = Some(OwnTransaction { pid, start });
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(sessions) = SESSIONS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            sessions.remove(&self.id);
        }
    }
}

/// Puts a connection in the registry, so a stop can cancel what it runs.
pub fn register(client: &Client, target: &DatabaseTarget) -> Registration {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    SESSIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(
            id,
            Entry {
                token: client.cancel_token(),
                target: target.clone(),
                transaction: None,
            },
        );
    Registration { id }
}

extern "C" fn on_signal(signal: nix::libc::c_int) {
    SIGNALLED.store(signal, Ordering::SeqCst);
}

/// Bounds the run by `limit` (if any) and stops it on SIGINT/SIGTERM from now on. The first
/// signal stops it gently (statements cancelled, the command reports); a second one ends the
/// process at once (the handler is one-shot).
pub fn arm(limit: Option<Duration>) {
    if let Some(limit) = limit {
        let _ = DEADLINE.set((Instant::now() + limit, limit));
    }
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // Safety: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(signal, &action) };
    }
    WATCHDOG.get_or_init(|| {
        thread::spawn(watch);
    });
}

/// Whether the run was stopped (the replay's reader checks this between records).
pub fn is_stopped() -> bool {
    FIRED.load(Ordering::SeqCst) || SIGNALLED.load(Ordering::SeqCst) != 0
}

/// What stopped the run, once it was stopped.
pub fn stopped() -> Option<Stopped> {
    if !FIRED.load(Ordering::SeqCst) {
        return None;
    }
    STOPPED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Why the run stopped, once it did (waiting the moment it takes to ask the server what its
/// statements waited for); `None` while it runs.
pub fn stop_reason() -> Option<String> {
    if !is_stopped() {
        return None;
    }
    let asked = Instant::now();
    while !FIRED.load(Ordering::SeqCst) && asked.elapsed() < OBSERVER_CONNECT_TIMEOUT * 2 {
        thread::sleep(Duration::from_millis(10));
    }
    Some(
        stopped()
            .map(|stopped| stopped.to_string())
            .unwrap_or_else(|| "interrupted".to_string()),
    )
}

/// The time left before the deadline, if the run has one.
pub fn time_left() -> Option<Duration> {
    DEADLINE
        .get()
        .map(|(deadline, _)| deadline.saturating_duration_since(Instant::now()))
}

/// `statement_timeout` for a transaction beginning now, in milliseconds, when the run is bounded:
/// a little past the time left (the cancel request comes first, with the reason), and at once
/// when none is left.
pub fn statement_timeout_setting() -> Option<String> {
    time_left().map(|left| {
        if left.is_zero() {
            return "1".to_string();
        }
        (left + STATEMENT_TIMEOUT_SLACK).as_millis().to_string()
    })
}

fn watch() {
    loop {
        // Signals are polled; the deadline is met on time.
        let nap = time_left().map_or(POLL, |left| left.min(POLL));
        thread::sleep(nap);
        let signal = SIGNALLED.load(Ordering::SeqCst);
        let reason = if signal != 0 {
            Some(StopReason::Signal(signal_name(signal)))
        } else {
            DEADLINE
                .get()
                .filter(|(deadline, _)| Instant::now() >= *deadline)
                .map(|(_, limit)| StopReason::TimedOut(*limit))
        };
        if let Some(reason) = reason {
            // The observer is bounded by its statement timeout, but a pooler may keep it waiting
            // for a server connection: the grace period starts in any case.
            let (fired, done) = std::sync::mpsc::channel();
            let stopping = reason.clone();
            thread::spawn(move || {
                fire(stopping);
                let _ = fired.send(());
            });
            let told = if done.recv_timeout(OBSERVER_CONNECT_TIMEOUT * 2).is_ok() {
                thread::sleep(GRACE);
                format!(
                    "the command did not end within {} of its cancel request",
                    humantime::format_duration(GRACE)
                )
            } else {
                // No server connection to ask from (a pooler's pool taken by this very run's
                // statements, say): leaving closes every connection, and the server ends their
                // statements within a second (client_connection_check_interval).
                "no connection could be had to cancel its statements (a connection pooler with \
                 no server connection free?); closing its connections ends them within a second"
                    .to_string()
            };
            let stopped = stopped().map(|s| s.to_string()).unwrap_or_else(|| {
                Stopped {
                    reason,
                    waiting: Vec::new(),
                }
                .to_string()
            });
            eprintln!("error: {stopped}; {told}, so metricsctl exits now");
            std::process::exit(3);
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match Signal::try_from(signal) {
        Ok(Signal::SIGTERM) => "SIGTERM",
        _ => "SIGINT (Ctrl-C)",
    }
}

/// Asks what every open session waits for, records why the run stops, then cancels them all.
fn fire(reason: StopReason) {
    let entries: Vec<(CancelToken, DatabaseTarget, Option<OwnTransaction>)> = SESSIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|sessions| {
            sessions
                .values()
                .map(|e| (e.token.clone(), e.target.clone(), e.transaction.clone()))
                .collect()
        })
        .unwrap_or_default();
    let own: Vec<OwnTransaction> = entries.iter().filter_map(|(_, _, t)| t.clone()).collect();
    let mut observer = match entries.first() {
        Some((_, target, _)) if !own.is_empty() => {
            crate::db::connect(target, OBSERVER_CONNECT_TIMEOUT).ok()
        }
        _ => None,
    };
    let waiting = observer
        .as_mut()
        .map(|observer| observe(observer, &own))
        .unwrap_or_default();
    // The reason is recorded before any statement is cancelled: a command that sees its statement
    // cancelled asks why.
    *STOPPED.lock().unwrap_or_else(|e| e.into_inner()) = Some(Stopped { reason, waiting });
    FIRED.store(true, Ordering::SeqCst);
    if let Some(mut observer) = observer {
        let _ = cancel(&mut observer, &own);
        let _ = observer.close();
        return;
    }
    // The protocol's cancel request only where no connection could be had at all: a pooler that
    // refuses new clients forwards no cancel request either, so none can crash it.
    for (token, target, transaction) in entries {
        if transaction.is_none() {
            continue;
        }
        if let Ok(tls) = target.tls.connector() {
            let _ = token.cancel_query(tls);
        }
    }
}

/// What each of `own`'s statements waits for, one line each (none where the role may not see).
/// PostgreSQL's objects only, and bounded: the observer must not wait on what it observes.
fn observe(observer: &mut Client, own: &[OwnTransaction]) -> Vec<String> {
    let pids: Vec<i32> = own.iter().map(|t| t.pid).collect();
    let rows = catalog_transaction(observer, Some(OBSERVER_CONNECT_TIMEOUT))
        .and_then(|mut tx| tx.rows(queries::SESSIONS_WAITING.sql(), &[&pids]));
    rows.as_deref().map(describe_waits).unwrap_or_default()
}

/// Cancels each of `own`'s statements, if its transaction is still the one under way there.
fn cancel(observer: &mut Client, own: &[OwnTransaction]) -> Result<(), postgres::Error> {
    let pids: Vec<i32> = own.iter().map(|t| t.pid).collect();
    let starts: Vec<String> = own.iter().map(|t| t.start.clone()).collect();
    let mut tx = catalog_transaction(observer, Some(OBSERVER_CONNECT_TIMEOUT))?;
    tx.rows(queries::CANCEL_OWN_STATEMENTS.sql(), &[&pids, &starts])?;
    tx.commit()
}

fn describe_waits(rows: &[postgres::Row]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for row in rows {
        let line = describe_wait(row);
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}

fn describe_wait(row: &postgres::Row) -> String {
    let wait_type: Option<String> = row.get("wait_event_type");
    let wait_event: Option<String> = row.get("wait_event");
    let blocker: Option<i32> = row.get("blocker_pid");
    let mut text = match (wait_type.as_deref(), &wait_event) {
        (Some("Lock"), Some(event)) => format!("it was waiting for a lock ({event})"),
        (Some(kind), Some(event)) => format!("it was running (waiting on {kind}: {event})"),
        _ => "it was running".to_string(),
    };
    if let Some(pid) = blocker {
        let holder = crate::db::LockHolder::from_row(row);
        debug_assert_eq!(holder.pid, pid);
        text.push_str(&format!(" held by {holder}"));
        if let Some(query) = row.get::<_, Option<String>>("blocker_query") {
            text.push_str(&format!(", {}", escape_control(&query)));
        }
        text.push_str(". End that session with SELECT pg_terminate_backend(");
        text.push_str(&pid.to_string());
        text.push_str(") if it is stuck, or raise --timeout");
    }
    text
}
