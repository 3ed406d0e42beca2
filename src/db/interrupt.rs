//! Every run is bounded and cancellable: when its time limit (`--timeout`) is up, or on SIGINT or
//! SIGTERM, the run's reason is recorded at once, then one more connection asks the server what
//! each of the run's statements waits for and cancels them (`pg_cancel_backend`, each named by its
//! server process and its transaction's start, so that behind a transaction pool a process handed
//! to another client since is left alone). The command then fails with that reason ([`stopped`]);
//! if it has not ended a few seconds later, the process exits 3 on its own.
//!
//! The protocol's cancel request, which psql sends, is never sent: rust-postgres hangs up on it
//! before the server answers, and pgbouncer 1.18 (Debian 12's) forwards it and then crashes (FATAL
//! "bad client state", pgbouncer issue #801), taking every client down with it — even when it
//! refuses new clients. Where the observer cannot connect, nothing is cancelled; each transaction's
//! `statement_timeout` is set a little beyond the time left ([`statement_timeout_setting`]), and
//! its `client_connection_check_interval` ends a statement once its client is gone.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

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

/// What to do when the limit ran out while nothing blocked the run.
const UNBLOCKED_ADVICE: &str = "Nothing blocked it: on this much data the work takes longer than \
    the limit. Raise --timeout (0: no limit), or judge a window instead with --since (check, \
    check ordering, check duplicates)";

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
    pub waiting: Waiting,
}

/// One of the run's statements as the observer saw it, just before cancelling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementWait {
    /// What it waited for, and who was in its way.
    pub text: String,
    /// Another session held what it waited for.
    pub blocked: bool,
}

/// What the run's statements were waiting for when it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// Not known yet: the observer is still asking.
    Asking,
    /// What each statement that was open waited for (none: no statement was running). Each was
    /// cancelled.
    Cancelled(Vec<StatementWait>),
    /// The observer could not connect or got no answer: nothing could be asked or cancelled.
    Unknown,
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
        match &self.waiting {
            Waiting::Cancelled(lines) if lines.is_empty() => {
                write!(f, "; no statement was running")
            }
            Waiting::Cancelled(waits) => {
                let texts: Vec<&str> = waits.iter().map(|wait| wait.text.as_str()).collect();
                write!(f, "; its statement was cancelled: {}", texts.join("; "))?;
                // Out of time with nobody in the way: the work itself is longer than the limit
                // (a whole-table check on a big table), and waiting again will not help.
                if matches!(self.reason, StopReason::TimedOut(_))
                    && waits.iter().all(|wait| !wait.blocked)
                {
                    write!(f, ". {UNBLOCKED_ADVICE}")?;
                }
                Ok(())
            }
            Waiting::Asking | Waiting::Unknown => write!(
                f,
                "; no connection could be had to ask what its statements waited for or to cancel \
                 them (a connection pooler with no server connection free?): the server ends \
                 them once metricsctl has closed its connections, or at their statement_timeout"
            ),
        }
    }
}

struct Entry {
    target: DatabaseTarget,
    /// The statement under way: the session's latest transaction (behind a pool, each may be on
    /// another server process), or a statement outside any.
    transaction: Option<OwnTransaction>,
}

/// A transaction as pg_stat_activity shows it: its server process and its start.
#[derive(Debug, Clone)]
struct OwnTransaction {
    pid: i32,
    /// `EXTRACT(EPOCH FROM xact_start)`, exact, as text; `None` for a statement run outside a
    /// transaction (CREATE INDEX CONCURRENTLY runs several of its own), on a session that is
    /// the server process's alone.
    start: Option<String>,
}

static SESSIONS: Mutex<Option<HashMap<u64, Entry>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static STOPPED: Mutex<Option<Stopped>> = Mutex::new(None);
static FIRED: AtomicBool = AtomicBool::new(false);
/// The signal received, 0 for none (set by the handler: only an atomic store).
static SIGNALLED: AtomicI32 = AtomicI32::new(0);
static DEADLINE: OnceLock<(Instant, Duration)> = OnceLock::new();
static WATCHDOG: OnceLock<()> = OnceLock::new();
/// The first session's statement_timeout and who set it, for messages about a statement it
/// cancelled.
static SESSION_TIMEOUT: OnceLock<crate::db::facts::SessionTimeout> = OnceLock::new();

/// Notes the session's statement_timeout (the first session's, read with its facts).
pub fn note_session_timeout(timeout: &crate::db::facts::SessionTimeout) {
    let _ = SESSION_TIMEOUT.set(timeout.clone());
}

/// The statement_timeout noted by [`note_session_timeout`].
pub fn session_timeout() -> Option<crate::db::facts::SessionTimeout> {
    SESSION_TIMEOUT.get().cloned()
}

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
            entry.transaction = Some(OwnTransaction {
                pid,
                start: Some(start),
            });
        }
    }

    /// Notes that a statement outside any transaction is about to run on the server process of
    /// the session's latest transaction (the session is that process's alone).
    pub fn note_outside_transaction(&self) {
        if let Some(entry) = SESSIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|sessions| sessions.get_mut(&self.id))
            && let Some(transaction) = entry.transaction.as_mut()
        {
            transaction.start = None;
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
pub fn register(target: &DatabaseTarget) -> Registration {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    SESSIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(
            id,
            Entry {
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

/// Whether the run was stopped (the replay's reader checks this between records): a signal, or
/// the deadline passed, even before the watchdog has noticed.
pub fn is_stopped() -> bool {
    FIRED.load(Ordering::SeqCst)
        || SIGNALLED.load(Ordering::SeqCst) != 0
        || DEADLINE
            .get()
            .is_some_and(|(deadline, _)| Instant::now() >= *deadline)
}

/// What stopped the run, once it was stopped, and what its statements waited for (waiting the
/// moment the observer takes to ask, at most [`OBSERVER_CONNECT_TIMEOUT`] and a little more).
pub fn stopped() -> Option<Stopped> {
    if !is_stopped() {
        return None;
    }
    let asked = Instant::now();
    let patience = OBSERVER_CONNECT_TIMEOUT + Duration::from_millis(500);
    loop {
        let current = STOPPED.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match current {
            Some(stopped) if stopped.waiting != Waiting::Asking => return Some(stopped),
            Some(stopped) if asked.elapsed() >= patience => {
                return Some(Stopped {
                    waiting: Waiting::Unknown,
                    ..stopped
                });
            }
            None if asked.elapsed() >= patience => return None,
            _ => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Why the run stopped, once it did; `None` while it runs.
pub fn stop_reason() -> Option<String> {
    if !is_stopped() {
        return None;
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
/// a little past the time left (the cancel comes first, with the reason), and at once when none
/// is left — unless the session's own (`session_ms`, 0 for none) is that low already: metricsctl
/// never raises it.
pub fn statement_timeout_setting(session_ms: i64) -> Option<String> {
    let left = time_left()?;
    let ours = if left.is_zero() {
        1
    } else {
        (left + STATEMENT_TIMEOUT_SLACK).as_millis() as i64
    };
    (session_ms <= 0 || ours < session_ms).then(|| ours.to_string())
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
            // The reason first, so that a command whose statement ends now knows why.
            *STOPPED.lock().unwrap_or_else(|e| e.into_inner()) = Some(Stopped {
                reason: reason.clone(),
                waiting: Waiting::Asking,
            });
            FIRED.store(true, Ordering::SeqCst);
            // The observer is bounded by its statement timeout, but a pooler may keep it waiting
            // for a server connection: the grace period runs from now in any case.
            thread::spawn(fire);
            thread::sleep(GRACE);
            let stopped = stopped().unwrap_or(Stopped {
                reason,
                waiting: Waiting::Unknown,
            });
            eprintln!(
                "error: {stopped}; the command did not end within {} of being stopped, so \
                 metricsctl exits now",
                humantime::format_duration(GRACE)
            );
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

/// Asks what every open statement of the run waits for, notes it, then cancels them all, from
/// a connection of its own.
fn fire() {
    let entries: Vec<(DatabaseTarget, Option<OwnTransaction>)> = SESSIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|sessions| {
            sessions
                .values()
                .map(|e| (e.target.clone(), e.transaction.clone()))
                .collect()
        })
        .unwrap_or_default();
    let own: Vec<OwnTransaction> = entries.iter().filter_map(|(_, t)| t.clone()).collect();
    let waiting = match entries.first() {
        Some((target, _)) if !own.is_empty() => observe_and_cancel(target, &own),
        _ => Waiting::Cancelled(Vec::new()),
    };
    if let Some(stopped) = STOPPED.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        stopped.waiting = waiting;
    }
}

/// On a connection of its own: what each of `own`'s statements waits for, then their
/// cancellation.
fn observe_and_cancel(target: &DatabaseTarget, own: &[OwnTransaction]) -> Waiting {
    let asked = Instant::now();
    let Ok(mut observer) = crate::db::connect(target, OBSERVER_CONNECT_TIMEOUT) else {
        return Waiting::Unknown;
    };
    let pids: Vec<i32> = own.iter().map(|t| t.pid).collect();
    let starts: Vec<Option<String>> = own.iter().map(|t| t.start.clone()).collect();
    let outcome = (|| -> Result<Vec<StatementWait>, postgres::Error> {
        // PostgreSQL's objects only, and bounded: the observer must not wait on what it observes.
        let mut tx = catalog_transaction(&mut observer, Some(OBSERVER_CONNECT_TIMEOUT))?;
        // A view the role may not fully read still leaves the cancel to do.
        let lines = match tx.savepoint() {
            Ok(mut asking) => {
                let rows = asking.rows(queries::SESSIONS_WAITING.sql(), &[&pids, &starts]);
                let lines = rows.as_deref().map(describe_waits).unwrap_or_default();
                if rows.is_ok() {
                    asking.commit()?;
                } else {
                    asking.rollback()?;
                }
                lines
            }
            Err(error) => return Err(error),
        };
        tx.rows(queries::CANCEL_OWN_STATEMENTS.sql(), &[&pids, &starts])?;
        tx.commit()?;
        Ok(lines)
    })();
    let _ = observer.close();
    match outcome {
        // Nothing found after a long wait for an answer (a pooler with no server connection
        // free until the statements ended): what they waited for is not known.
        Ok(lines) if lines.is_empty() && asked.elapsed() > OBSERVER_CONNECT_TIMEOUT / 2 => {
            Waiting::Unknown
        }
        Ok(lines) => Waiting::Cancelled(lines),
        Err(_) => Waiting::Unknown,
    }
}

fn describe_waits(rows: &[postgres::Row]) -> Vec<StatementWait> {
    let mut waits: Vec<StatementWait> = Vec::new();
    for row in rows {
        let wait = describe_wait(row);
        if !waits.contains(&wait) {
            waits.push(wait);
        }
    }
    waits
}

fn describe_wait(row: &postgres::Row) -> StatementWait {
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
    StatementWait {
        text,
        blocked: blocker.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed_out(waits: Vec<StatementWait>) -> String {
        Stopped {
            reason: StopReason::TimedOut(Duration::from_secs(30)),
            waiting: Waiting::Cancelled(waits),
        }
        .to_string()
    }

    fn running() -> StatementWait {
        StatementWait {
            text: "it was running (waiting on IO: DataFileRead)".to_string(),
            blocked: false,
        }
    }

    fn behind_a_lock() -> StatementWait {
        StatementWait {
            text: "it was waiting for a lock (relation) held by pid 4242. End that session with \
                   SELECT pg_terminate_backend(4242) if it is stuck, or raise --timeout"
                .to_string(),
            blocked: true,
        }
    }

    #[test]
    fn a_timeout_with_nothing_in_the_way_says_the_work_is_longer_than_the_limit() {
        let text = timed_out(vec![running()]);
        assert!(
            text.starts_with(
                "timed out after 30s (--timeout); its statement was cancelled: it was running"
            ),
            "{text}"
        );
        assert!(text.contains(UNBLOCKED_ADVICE), "{text}");
    }

    #[test]
    fn a_timeout_behind_a_lock_names_the_holder_and_not_the_data() {
        let text = timed_out(vec![running(), behind_a_lock()]);
        assert!(text.contains("pg_terminate_backend(4242)"), "{text}");
        assert!(!text.contains("Nothing blocked it"), "{text}");
    }

    #[test]
    fn an_interrupt_gives_no_advice_about_the_limit() {
        let text = Stopped {
            reason: StopReason::Signal("SIGINT"),
            waiting: Waiting::Cancelled(vec![running()]),
        }
        .to_string();
        assert!(text.starts_with("interrupted by SIGINT"), "{text}");
        assert!(!text.contains("Nothing blocked it"), "{text}");
    }
}
