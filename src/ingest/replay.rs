//! Replaying event files through the idempotent insert path: streaming, in batches, with every
//! rejected record named by file, line and reason and kept verbatim for fixing.
//!
//! One thread reads and validates the files and cuts batches; `jobs` writer threads, each with
//! its own connection, send them through the guard. Events are routed to writers by sensor, so a
//! sensor's events are always written by one writer in input order: `metrics.id` keeps delivery
//! order within a sensor. Bounded channels keep memory flat (a few batches in flight per writer).
//!
//! What is said about the database is kept true:
//! - a ledger knows every batch read but not confirmed committed, wherever it is (being filled,
//!   queued, in flight), so a stop names a line before which *every* event is committed;
//! - an event id repeated under another sensor goes to another writer; that batch waits until the
//!   batch with the first occurrence has committed, so the first occurrence wins under any `--jobs`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde::Serialize;

use crate::error::{Error, What};
use crate::events::{Event, EventReader, Format, InputFile, Parsed, Record};
use crate::ingest::rejects::RejectsFile;
use crate::ingest::{EventBatch, Ingestor, Remedy, SequenceBehind, remedy, was_cancelled};
use crate::schema::partitions::{self, Coverage};

/// Rejections kept in the summary; all are counted and all go to `--rejects`.
const REJECTIONS_IN_SUMMARY: usize = 100;
/// Batches cut but not yet written, per writer: enough to keep it busy, few enough to bound memory.
const BATCHES_IN_FLIGHT: usize = 2;

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Read every file as this format instead of detecting it.
    pub format: Option<Format>,
    pub batch_size: usize,
    /// Stop at the first bad record and commit nothing from its file (one writer).
    pub strict: bool,
    /// Parse, validate and count what would be inserted; write nothing.
    pub dry_run: bool,
    /// Restore the metrics of events whose guard row exists but whose metric is missing.
    pub repair: bool,
    /// Where rejected records go, verbatim.
    pub rejects: Option<PathBuf>,
}

/// A record that was not ingested, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// What a replay did. With `dry_run`, `inserted` counts what would be inserted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub dry_run: bool,
    /// The replay read every file to its end (or to where `--strict` stopped).
    pub complete: bool,
    pub files: u64,
    pub lines: u64,
    /// Valid events read.
    pub events: u64,
    pub inserted: u64,
    /// `--repair`: metrics restored for guard rows that had lost theirs.
    pub restored: u64,
    /// Events whose id the database already held (including ones an earlier batch of this
    /// replay inserted).
    pub already_present: u64,
    /// Repeats of an event id within one batch, dropped before the database saw them.
    pub repeated_in_input: u64,
    /// Events read but not confirmed committed: never sent, rolled back (`--strict`), or in a
    /// batch whose connection was lost. A rerun finishes them.
    pub unconfirmed: u64,
    pub rejected: u64,
    pub tombstones: u64,
    pub elapsed_seconds: f64,
    pub events_per_second: f64,
    /// Set only once the rejects file is complete and in place.
    pub rejects_file: Option<String>,
    /// The first rejections, with file, line and reason.
    pub rejections: Vec<Rejection>,
    /// `--strict` stopped here (`file:line`); nothing from that file was committed.
    pub stopped_at: Option<String>,
    /// When the replay stopped early: every event before this `file:line` is committed.
    pub committed_before: Option<String>,
}

/// Why a replay could not finish (what kind of trouble: an input or the rejects file, the
/// database, an interruption), with what it had done by then.
#[derive(Debug)]
pub struct ReplayError {
    pub summary: Box<ReplaySummary>,
    pub error: Error,
}

/// A place in the input: files in command-line order, then lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    file: usize,
    line: u64,
}

/// Every batch read but not confirmed committed, by ticket, with where it starts.
#[derive(Default)]
struct Ledger {
    state: Mutex<LedgerState>,
    closed: Condvar,
}

#[derive(Default)]
struct LedgerState {
    next_ticket: u64,
    open: BTreeMap<u64, Position>,
}

impl Ledger {
    fn open(&self, at: Position) -> u64 {
        let mut state = self.state.lock().expect("not poisoned");
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.open.insert(ticket, at);
        ticket
    }

    fn close(&self, ticket: u64) {
        self.state
            .lock()
            .expect("not poisoned")
            .open
            .remove(&ticket);
        self.closed.notify_all();
    }

    /// `--strict`: a file's batches commit (or roll back) together.
    fn close_file(&self, file: usize) {
        self.state
            .lock()
            .expect("not poisoned")
            .open
            .retain(|_, at| at.file != file);
        self.closed.notify_all();
    }

    fn is_open(&self, ticket: u64) -> bool {
        self.state
            .lock()
            .expect("not poisoned")
            .open
            .contains_key(&ticket)
    }

    fn start_of(&self, ticket: u64) -> Option<Position> {
        self.state
            .lock()
            .expect("not poisoned")
            .open
            .get(&ticket)
            .copied()
    }

    /// The earliest event that may not be committed.
    fn earliest_open(&self) -> Option<Position> {
        self.state
            .lock()
            .expect("not poisoned")
            .open
            .values()
            .min()
            .copied()
    }

    /// Waits until every ticket is closed; `false` when `stop` says to give up.
    fn wait_closed(&self, tickets: &[u64], stop: impl Fn() -> bool) -> bool {
        let mut state = self.state.lock().expect("not poisoned");
        loop {
            if tickets.iter().all(|t| !state.open.contains_key(t)) {
                return true;
            }
            if stop() {
                return false;
            }
            state = self
                .closed
                .wait_timeout(state, Duration::from_millis(100))
                .expect("not poisoned")
                .0;
        }
    }
}

/// State the reader and the writers share.
struct Shared<'a> {
    options: &'a ReplayOptions,
    on_progress: &'a (dyn Fn(Progress) + Sync),
    stopped: &'a (dyn Fn() -> Option<String> + Sync),
    started: Instant,
    bytes_read: Arc<AtomicU64>,
    events_written: AtomicU64,
    ledger: Ledger,
    /// Set by the first writer that fails: everyone stops.
    failed: AtomicBool,
}

impl Shared<'_> {
    fn should_stop(&self) -> bool {
        self.failed.load(Ordering::Relaxed) || (self.stopped)().is_some()
    }
}

/// What the reading thread hands to a writer, in input order.
enum Work {
    FileStarted,
    Batch {
        batch: EventBatch,
        ticket: u64,
        /// Batches of other writers that hold an earlier occurrence of one of these event ids.
        after: Vec<u64>,
    },
    /// The file was read to its end, or `--strict` stopped in it (`kept == false`).
    FileFinished {
        file: usize,
        kept: bool,
    },
}

/// How far a replay has got, for whoever shows it.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Raw bytes read from the inputs (compressed bytes, for gzip).
    pub bytes_read: u64,
    pub events_written: u64,
    pub events_per_second: f64,
}

/// How a replay reports as it goes, and how it is told to stop. The library draws nothing: the
/// command shows what it hears.
pub struct Watch<'a> {
    /// Every rejected record, as it happens (on the reading thread).
    pub on_reject: &'a mut (dyn FnMut(&Rejection) + Send),
    /// After every batch written (on the writing threads).
    pub on_progress: &'a (dyn Fn(Progress) + Sync),
    /// Why the run was stopped (a signal, its time limit), once it was: the replay stops reading
    /// and its writers' statements are cancelled.
    pub stopped: &'a (dyn Fn() -> Option<String> + Sync),
}

/// Replays `inputs` in order, with one writer per ingestor (`--strict` needs exactly one).
pub fn replay(
    mut ingestors: Vec<Ingestor>,
    inputs: Vec<InputFile>,
    options: &ReplayOptions,
    watch: Watch<'_>,
) -> Result<ReplaySummary, ReplayError> {
    assert!(!ingestors.is_empty(), "at least one writer");
    assert!(
        !options.strict || ingestors.len() == 1,
        "--strict keeps a file in one transaction, so one writer"
    );
    let (rejects, coverage) = prepare(&mut ingestors, &inputs, options)?;
    let statement_timeout = ingestors[0].session().facts().statement_timeout.clone();
    let Watch {
        on_reject,
        on_progress,
        stopped,
    } = watch;
    let shared = Shared {
        options,
        on_progress,
        stopped,
        started: Instant::now(),
        bytes_read: Arc::new(AtomicU64::new(0)),
        events_written: AtomicU64::new(0),
        ledger: Ledger::default(),
        failed: AtomicBool::new(false),
    };
    let names: Vec<Arc<str>> = inputs.iter().map(|i| Arc::from(i.name.as_str())).collect();
    let mut reading = Reading {
        shared: &shared,
        on_reject,
        rejects,
        coverage,
        summary: ReplaySummary::default(),
        stopped_at: Position { file: 0, line: 1 },
    };
    let mut writers: Vec<Writer> = ingestors
        .into_iter()
        .map(|ingestor| Writer::new(ingestor, &shared))
        .collect();
    let (read_outcome, write_outcomes) = read_and_write(&mut reading, &mut writers, inputs);

    let Reading {
        mut summary,
        rejects,
        stopped_at: reader_position,
        ..
    } = reading;
    add_up(&mut summary, &writers, options, shared.started);
    let stop = why_not_done(read_outcome, write_outcomes, stopped(), summary.unconfirmed);
    match stop {
        None => finish(summary, rejects),
        Some(stop) => {
            let resume = shared.ledger.earliest_open().unwrap_or(reader_position);
            Err(stopped_early(
                summary,
                stop,
                resume,
                &names,
                options,
                &statement_timeout,
            ))
        }
    }
}

/// What stopped the replay before it was done, if anything. A writer's failure comes first: it
/// also ends the reading, which then sees closed channels. An interruption (`reason`) counts only
/// if it left something undone, and a statement cancelled because the run was stopped is the
/// stop, not a database failure.
fn why_not_done(
    read_outcome: Result<ReadEnd, ReadFailure>,
    write_outcomes: Vec<Result<(), WriteFailure>>,
    reason: Option<String>,
    unconfirmed: u64,
) -> Option<Stop> {
    let halted = matches!(read_outcome, Ok(ReadEnd::Halted));
    let write_failure = write_outcomes.into_iter().find_map(Result::err);
    if let Some(failure) = write_failure.filter(|f| reason.is_none() || !was_cancelled(&f.error)) {
        return Some(Stop::Write(failure));
    }
    if let Some(reason) = reason.filter(|_| halted || unconfirmed > 0 || read_outcome.is_err()) {
        return Some(Stop::Interrupted(reason));
    }
    read_outcome.err().map(Stop::Read)
}

/// Before anything is read: the rejects file (never one of the inputs), the repair statements,
/// the sequence (refused when behind, before anything is written) and where partitions are.
fn prepare(
    ingestors: &mut [Ingestor],
    inputs: &[InputFile],
    options: &ReplayOptions,
) -> Result<(Option<RejectsFile>, Option<Coverage>), ReplayError> {
    let before_start = |error: Error| ReplayError {
        summary: Box::new(ReplaySummary {
            dry_run: options.dry_run,
            ..ReplaySummary::default()
        }),
        error: error.context("nothing was written"),
    };
    let database = |e: postgres::Error| before_start(e.into());
    let rejects = match &options.rejects {
        Some(path) => {
            let identities: Vec<_> = inputs
                .iter()
                .map(|i| (i.name.clone(), i.identity))
                .collect();
            Some(
                RejectsFile::create(path, &identities)
                    .map_err(|e| before_start(Error::new(What::Io, e)))?,
            )
        }
        None => None,
    };
    if options.repair {
        for ingestor in ingestors.iter_mut() {
            ingestor.restore_lost_metrics();
        }
    }
    let first = &mut ingestors[0];
    // A dry run by a role that may only read the tables goes without (a real run may always).
    let sequence_readable = first
        .session()
        .facts()
        .metrics()
        .is_some_and(|m| m.may_read_sequence);
    if sequence_readable
        && let Some(position) = first
            .sequence_position()
            .map_err(database)?
            .filter(|p| p.is_behind())
    {
        return Err(before_start(SequenceBehind(position).into_error()));
    }
    let coverage = partitions::coverage(first.session()).map_err(database)?;
    Ok((rejects, coverage))
}

/// The reading thread (this one) and a thread per writer, until all are done.
fn read_and_write(
    reading: &mut Reading<'_>,
    writers: &mut [Writer<'_>],
    inputs: Vec<InputFile>,
) -> (Result<ReadEnd, ReadFailure>, Vec<Result<(), WriteFailure>>) {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..writers.len())
        .map(|_| sync_channel::<Work>(BATCHES_IN_FLIGHT))
        .unzip();
    std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .iter_mut()
            .zip(receivers)
            .map(|(writer, work)| scope.spawn(move || writer.write_all(work)))
            .collect();
        let read_outcome = reading.read_all(inputs, senders);
        let write_outcomes = handles
            .into_iter()
            .map(|h| h.join().expect("writer threads do not panic"))
            .collect();
        (read_outcome, write_outcomes)
    })
}

/// The writers' counts into the summary, and what is left unconfirmed.
fn add_up(
    summary: &mut ReplaySummary,
    writers: &[Writer<'_>],
    options: &ReplayOptions,
    started: Instant,
) {
    summary.dry_run = options.dry_run;
    summary.inserted = writers.iter().map(|w| w.inserted).sum();
    summary.restored = writers.iter().map(|w| w.restored).sum();
    summary.already_present = writers.iter().map(|w| w.already_present).sum();
    summary.unconfirmed = summary.events.saturating_sub(
        summary.inserted + summary.restored + summary.already_present + summary.repeated_in_input,
    );
    let elapsed = started.elapsed().as_secs_f64();
    summary.elapsed_seconds = (elapsed * 1000.0).round() / 1000.0;
    summary.events_per_second = if elapsed > 0.0 {
        (summary.events as f64 / elapsed).round()
    } else {
        0.0
    };
}

/// A replay that read everything: the rejects file is put in place (or that fails loudly).
fn finish(
    mut summary: ReplaySummary,
    rejects: Option<RejectsFile>,
) -> Result<ReplaySummary, ReplayError> {
    summary.complete = true;
    let Some(rejects) = rejects else {
        return Ok(summary);
    };
    let path = rejects.path().display().to_string();
    if let Err(error) = rejects.finish() {
        summary.complete = false;
        return Err(ReplayError {
            error: Error::new(
                What::Io,
                anyhow!(
                    "cannot write the rejects file {path}: {error}. Every event read is \
                     committed, but the {} rejected line(s) are not saved there. Free space or \
                     name another --rejects file, then rerun the same command: stored events are \
                     skipped and the rejected lines are written again",
                    summary.rejected
                ),
            ),
            summary: Box::new(summary),
        });
    }
    summary.rejects_file = Some(path);
    Ok(summary)
}

/// A replay that stopped early: what is committed (every event before `resume`), why it
/// stopped, and whether a rerun can finish it.
fn stopped_early(
    mut summary: ReplaySummary,
    stop: Stop,
    resume: Position,
    names: &[Arc<str>],
    options: &ReplayOptions,
    statement_timeout: &crate::db::facts::SessionTimeout,
) -> ReplayError {
    let resume_text = format!(
        "{}:{}",
        names[resume.file.min(names.len() - 1)],
        resume.line
    );
    let claim = if options.dry_run {
        // A dry run commits nothing: what it says is how far it had counted.
        format!("nothing was written (a dry run); it had counted the events before {resume_text}")
    } else if resume == (Position { file: 0, line: 1 }) && summary.inserted == 0 {
        "nothing was committed".to_string()
    } else if summary.unconfirmed == 0 {
        format!("every event read is committed (everything before {resume_text})")
    } else {
        format!(
            "every event before {resume_text} is committed; {} event(s) read from there on are \
             not, or not confirmed",
            summary.unconfirmed
        )
    };
    let rejects_note = match &options.rejects {
        Some(path) if summary.rejected > 0 => format!(
            " The rejects file {} was left as it was (the replay did not finish); the rerun \
             writes it.",
            path.display()
        ),
        _ => String::new(),
    };
    if !options.dry_run {
        summary.committed_before = Some(resume_text.clone());
    }
    let rerun = if options.dry_run {
        "rerun the same dry run"
    } else {
        "rerun the same command: events already stored are skipped, never duplicated"
    };
    let (what, message) = why_it_stopped(stop, &claim, names, statement_timeout, rerun);
    ReplayError {
        summary: Box::new(summary),
        error: Error::new(what, anyhow!("{message}{rejects_note}")),
    }
}

/// `text` begun with a capital, to follow a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The stop's cause, and the message: what happened, what is committed, what to do.
fn why_it_stopped(
    stop: Stop,
    claim: &str,
    names: &[Arc<str>],
    statement_timeout: &crate::db::facts::SessionTimeout,
    rerun: &str,
) -> (What, String) {
    match stop {
        Stop::Write(WriteFailure { error, batch_start }) => {
            let whence = match batch_start {
                Some(at) => format!(
                    "writing the batch starting at {}:{} failed",
                    names[at.file], at.line
                ),
                None => "writing to the database failed".to_string(),
            };
            let advice = match remedy(&error, statement_timeout) {
                Remedy::Rerun => format!("To finish, {rerun}."),
                Remedy::FixTheCause => format!("Fix the cause, then {rerun}."),
                Remedy::First(what) => format!("{}, then {rerun}.", sentence(&what)),
            };
            (
                error.what(),
                format!("{whence}: {error}. {}. {advice}", sentence(claim)),
            )
        }
        Stop::Interrupted(reason) => (
            What::Interrupted,
            format!("{reason}: {claim}. To finish, {rerun}."),
        ),
        Stop::Read(failure) => {
            let name = &names[failure.file];
            let message = match failure.kind {
                ReadFailureKind::CutOff { after_line, error } => format!(
                    "{name} ends early or is corrupt after line {after_line} ({error}): {claim}. \
                     A rerun would stop at the same place: replay a complete copy of {name} \
                     (events already stored are skipped)."
                ),
                ReadFailureKind::Unreadable { after_line, error } => format!(
                    "reading {name} failed after line {after_line} ({error}): {claim}. Fix the \
                     cause, then {rerun}."
                ),
                ReadFailureKind::Unusable(error) => format!(
                    "{name} is not a usable event file: {error:#}. Nothing from it was read; \
                     {claim}. Fix the file (or name its format with --input-format), then {rerun}."
                ),
                ReadFailureKind::RejectsUnwritable(error) => format!(
                    "cannot write the rejects file: {error}. {}. Free space or name \
                     another --rejects file, then {rerun}.",
                    sentence(claim)
                ),
            };
            (What::Io, message)
        }
    }
}

enum Stop {
    Write(WriteFailure),
    Read(ReadFailure),
    /// The run was stopped (a signal, its time limit), for this reason.
    Interrupted(String),
}

/// Why reading stopped.
struct ReadFailure {
    file: usize,
    kind: ReadFailureKind,
}

enum ReadFailureKind {
    /// A gzip stream that ends early or is corrupt: rereading it fails the same way.
    CutOff {
        after_line: u64,
        error: io::Error,
    },
    Unreadable {
        after_line: u64,
        error: io::Error,
    },
    /// Not an event file we can read (no usable CSV header).
    Unusable(anyhow::Error),
    RejectsUnwritable(io::Error),
}

/// A read error of a gzip stream that is not the operating system's is the stream's own: cut
/// off or corrupt, so rereading fails the same way.
fn read_error(gzip: bool, after_line: u64, error: io::Error) -> ReadFailureKind {
    if gzip && error.raw_os_error().is_none() {
        ReadFailureKind::CutOff { after_line, error }
    } else {
        ReadFailureKind::Unreadable { after_line, error }
    }
}

/// A writer hung up (it failed), or the operator interrupted: reading just stops.
struct Halt;

/// How reading ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    /// Every file read to its end, or to where `--strict` stopped.
    Finished,
    /// A writer failed or the operator interrupted.
    Halted,
}

/// The reading side: files to validated batches, rejects to the rejects file.
struct Reading<'a> {
    shared: &'a Shared<'a>,
    on_reject: &'a mut (dyn FnMut(&Rejection) + Send),
    rejects: Option<RejectsFile>,
    coverage: Option<Coverage>,
    summary: ReplaySummary,
    /// The first line not yet handed to a writer or rejected, where reading stopped.
    stopped_at: Position,
}

/// Events a batch makes room for up front; it grows as events arrive, so a large --batch-size
/// (times --jobs writers) is never allocated before there are events to fill it. The default
/// batch (5,000) fits, so the usual path allocates exactly as before.
const PREALLOCATED_EVENTS: usize = 8192;

/// The batch being filled for each writer.
struct Shards {
    batches: Vec<EventBatch>,
    /// The ledger ticket of each batch being filled (opened with its first event).
    tickets: Vec<Option<u64>>,
    after: Vec<Vec<u64>>,
    batch_size: usize,
    /// Dry runs write nothing, so they share by event id: every repeat reaches the same writer.
    by_event_id: bool,
    /// Recent event ids (hashed) and the batch holding them, to order repeats across writers.
    recent: HashMap<u64, (usize, u64)>,
    prune_at: usize,
}

impl Shards {
    fn new(writers: usize, batch_size: usize, by_event_id: bool) -> Shards {
        Shards {
            batches: (0..writers)
                .map(|_| EventBatch::with_capacity(batch_size.min(PREALLOCATED_EVENTS)))
                .collect(),
            tickets: vec![None; writers],
            after: vec![Vec::new(); writers],
            batch_size,
            by_event_id,
            recent: HashMap::new(),
            prune_at: 4 * writers * batch_size,
        }
    }

    /// The writer for an event: always the same one per sensor, so its events stay in order.
    fn shard_of(&self, event: &Event) -> usize {
        if self.batches.len() == 1 {
            return 0;
        }
        let key = if self.by_event_id {
            &event.event_id
        } else {
            &event.sensor_id
        };
        (hash(key) % self.batches.len() as u64) as usize
    }
}

fn hash(text: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

impl Reading<'_> {
    fn read_all(
        &mut self,
        inputs: Vec<InputFile>,
        work: Vec<SyncSender<Work>>,
    ) -> Result<ReadEnd, ReadFailure> {
        for (file, input) in inputs.into_iter().enumerate() {
            self.stopped_at = Position { file, line: 1 };
            match self.read_file(file, input, &work)? {
                FileEnd::Read => {}
                FileEnd::StrictStop => break,
                FileEnd::Halted => return Ok(ReadEnd::Halted),
            }
        }
        Ok(ReadEnd::Finished)
    }

    /// Reads one file.
    fn read_file(
        &mut self,
        file: usize,
        input: InputFile,
        work: &[SyncSender<Work>],
    ) -> Result<FileEnd, ReadFailure> {
        self.summary.files += 1;
        let name: Arc<str> = Arc::from(input.name.as_str());
        let (mut reader, gzip) = self.open(file, input, &name)?;
        if broadcast(work, || Work::FileStarted).is_err() {
            return Ok(FileEnd::Halted);
        }
        let mut shards = Shards::new(
            work.len(),
            self.shared.options.batch_size,
            self.shared.options.dry_run,
        );
        let outcome = self.read_records(file, &name, &mut reader, gzip, &mut shards, work);
        self.summary.lines += reader.lines_read();
        self.stopped_at = Position {
            file,
            line: reader.next_line(),
        };
        let kept = match outcome {
            Ok(RecordsEnd::Halted) => return Ok(FileEnd::Halted),
            Ok(RecordsEnd::StrictStop) => false,
            Ok(RecordsEnd::End) | Err(_) => true,
        };
        // Every complete event read goes to the database, even when reading then failed: what
        // is said to be committed must be (with --strict the file commits whole or not at all).
        let flush = kept && !(self.shared.options.strict && outcome.is_err());
        if flush {
            for shard in 0..work.len() {
                if !shards.batches[shard].is_empty()
                    && self.send_batch(work, &mut shards, shard).is_err()
                {
                    return outcome.map(|_| FileEnd::Halted);
                }
            }
        }
        let finished = broadcast(work, || Work::FileFinished { file, kept: flush }).is_ok();
        outcome?;
        Ok(match (finished, kept) {
            (false, _) => FileEnd::Halted,
            (true, false) => FileEnd::StrictStop,
            (true, true) => FileEnd::Read,
        })
    }

    /// The file's records, with whether it is gzip (whose read errors mean it is cut off).
    fn open(
        &mut self,
        file: usize,
        input: InputFile,
        name: &str,
    ) -> Result<(EventReader, bool), ReadFailure> {
        let fail = |kind| ReadFailure { file, kind };
        let (reader, gzip) =
            input
                .into_reader(self.shared.bytes_read.clone())
                .map_err(|error| {
                    fail(ReadFailureKind::Unreadable {
                        after_line: 0,
                        error,
                    })
                })?;
        match EventReader::new(reader, self.shared.options.format, Some(name)) {
            Ok(reader) => Ok((reader, gzip)),
            Err(error) => Err(fail(match error.downcast::<io::Error>() {
                Ok(error) => read_error(gzip, 0, error),
                Err(error) => ReadFailureKind::Unusable(error),
            })),
        }
    }

    /// Takes the file's records until its end, a `--strict` stop, a halt or a read failure.
    fn read_records(
        &mut self,
        file: usize,
        name: &Arc<str>,
        reader: &mut EventReader,
        gzip: bool,
        shards: &mut Shards,
        work: &[SyncSender<Work>],
    ) -> Result<RecordsEnd, ReadFailure> {
        let fail = |kind| ReadFailure { file, kind };
        loop {
            if self.shared.should_stop() {
                return Ok(RecordsEnd::Halted);
            }
            let record = match reader.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => return Ok(RecordsEnd::End),
                Err(error) => return Err(fail(read_error(gzip, reader.lines_read(), error))),
            };
            match self.take_record(file, name, reader, record, shards, work) {
                Ok(true) => {}
                Ok(false) => return Ok(RecordsEnd::StrictStop),
                Err(TakeError::Halt) => return Ok(RecordsEnd::Halted),
                Err(TakeError::Rejects(error)) => {
                    return Err(fail(ReadFailureKind::RejectsUnwritable(error)));
                }
            }
        }
    }
    /// Takes one record; `Ok(false)` when `--strict` stops at it.
    fn take_record(
        &mut self,
        file: usize,
        name: &Arc<str>,
        reader: &EventReader,
        record: Record,
        shards: &mut Shards,
        work: &[SyncSender<Work>],
    ) -> Result<bool, TakeError> {
        let line = record.line;
        let reason = match record.parsed {
            Ok(Parsed::Event(event)) => match &self.coverage {
                Some(coverage) if !coverage.covers(event.timestamp) => {
                    let month = partitions::month_of(event.timestamp);
                    format!(
                        "no partition of metrics holds {month} and there is no DEFAULT partition; \
                         create it with `metricsctl partitions create --from {month} --months 0`, \
                         then replay this line"
                    )
                }
                _ => {
                    self.summary.events += 1;
                    self.push(file, line, event, shards, work)
                        .map_err(|Halt| TakeError::Halt)?;
                    return Ok(true);
                }
            },
            Ok(Parsed::Tombstone) => {
                self.summary.tombstones += 1;
                return Ok(true);
            }
            Err(reason) => reason.to_string(),
        };
        self.reject(name, reader, line, &record.raw, reason)
            .map_err(TakeError::Rejects)?;
        if self.shared.options.strict {
            self.summary.stopped_at = Some(format!("{name}:{line}"));
            return Ok(false);
        }
        Ok(true)
    }

    /// Adds an event to its writer's batch, sending the batch when it is full. An event id met
    /// earlier in another writer's unconfirmed batch makes this batch wait for that one.
    fn push(
        &mut self,
        file: usize,
        line: u64,
        event: Event,
        shards: &mut Shards,
        work: &[SyncSender<Work>],
    ) -> Result<(), Halt> {
        let ledger = &self.shared.ledger;
        let shard = shards.shard_of(&event);
        let ticket =
            *shards.tickets[shard].get_or_insert_with(|| ledger.open(Position { file, line }));
        if work.len() > 1 && !shards.by_event_id {
            let id = hash(&event.event_id);
            if let Some(&(other, earlier)) = shards.recent.get(&id)
                && other != shard
                && ledger.is_open(earlier)
            {
                if shards.tickets[other] == Some(earlier) {
                    // The first occurrence is still being gathered: send it ahead.
                    self.send_batch(work, shards, other)?;
                }
                if !shards.after[shard].contains(&earlier) {
                    shards.after[shard].push(earlier);
                }
            }
            shards.recent.insert(id, (shard, ticket));
        }
        shards.batches[shard].push(event);
        if shards.batches[shard].len() >= shards.batch_size {
            self.send_batch(work, shards, shard)?;
        }
        Ok(())
    }

    fn send_batch(
        &mut self,
        work: &[SyncSender<Work>],
        shards: &mut Shards,
        shard: usize,
    ) -> Result<(), Halt> {
        let mut batch = std::mem::replace(
            &mut shards.batches[shard],
            EventBatch::with_capacity(shards.batch_size.min(PREALLOCATED_EVENTS)),
        );
        let ticket = shards.tickets[shard]
            .take()
            .expect("a filled batch has a ticket");
        let after = std::mem::take(&mut shards.after[shard]);
        self.summary.repeated_in_input += batch.prepare() as u64;
        if shards.recent.len() > shards.prune_at {
            let ledger = &self.shared.ledger;
            shards.recent.retain(|_, (_, t)| ledger.is_open(*t));
            shards.prune_at = shards.prune_at.max(2 * shards.recent.len());
        }
        work[shard]
            .send(Work::Batch {
                batch,
                ticket,
                after,
            })
            .map_err(|_| Halt)
    }

    fn reject(
        &mut self,
        name: &str,
        reader: &EventReader,
        line: u64,
        raw: &[u8],
        reason: String,
    ) -> io::Result<()> {
        self.summary.rejected += 1;
        let rejection = Rejection {
            file: name.to_string(),
            line,
            reason,
        };
        (self.on_reject)(&rejection);
        if self.summary.rejections.len() < REJECTIONS_IN_SUMMARY {
            self.summary.rejections.push(rejection);
        }
        match self.rejects.as_mut() {
            // A CSV rejects file gets the header row, so it can be fixed and replayed.
            Some(rejects) => rejects.write(reader.csv_header_line(), raw),
            None => Ok(()),
        }
    }
}

enum FileEnd {
    Read,
    StrictStop,
    Halted,
}

/// How reading a file's records ended, when it did not fail.
enum RecordsEnd {
    End,
    StrictStop,
    Halted,
}

enum TakeError {
    Halt,
    Rejects(io::Error),
}

fn broadcast(work: &[SyncSender<Work>], item: impl Fn() -> Work) -> Result<(), Halt> {
    for writer in work {
        writer.send(item()).map_err(|_| Halt)?;
    }
    Ok(())
}

/// Why a writer stopped, and where its batch started.
struct WriteFailure {
    error: Error,
    batch_start: Option<Position>,
}

/// A writing thread: batches through the guard; with `--strict`, a file in one transaction.
struct Writer<'a> {
    ingestor: Ingestor,
    shared: &'a Shared<'a>,
    inserted: u64,
    restored: u64,
    already_present: u64,
    /// (inserted, restored, already present) inside the open `--strict` transaction, counted at
    /// commit.
    pending: (u64, u64, u64),
    in_transaction: bool,
}

impl<'a> Writer<'a> {
    fn new(ingestor: Ingestor, shared: &'a Shared<'a>) -> Writer<'a> {
        Writer {
            ingestor,
            shared,
            inserted: 0,
            restored: 0,
            already_present: 0,
            pending: (0, 0, 0),
            in_transaction: false,
        }
    }

    /// Consumes work until the reader is done. The first database error ends it; dropping the
    /// receiver and raising `failed` stops the reader and the other writers.
    fn write_all(&mut self, work: Receiver<Work>) -> Result<(), WriteFailure> {
        let options = self.shared.options;
        let in_one_transaction = options.strict && !options.dry_run;
        let plain = |error: postgres::Error| WriteFailure {
            error: error.into(),
            batch_start: None,
        };
        let outcome = (|| -> Result<(), WriteFailure> {
            for item in work.iter() {
                if self.shared.should_stop() {
                    break;
                }
                match item {
                    Work::FileStarted if in_one_transaction => {
                        self.ingestor.begin().map_err(plain)?;
                        self.in_transaction = true;
                    }
                    Work::Batch {
                        batch,
                        ticket,
                        after,
                    } => {
                        let ledger = &self.shared.ledger;
                        if !ledger.wait_closed(&after, || self.shared.should_stop()) {
                            break;
                        }
                        self.write_batch(&batch, ticket)?
                    }
                    Work::FileFinished { file, kept } if in_one_transaction => {
                        self.in_transaction = false;
                        if kept {
                            self.ingestor.commit().map_err(plain)?;
                            self.inserted += self.pending.0;
                            self.restored += self.pending.1;
                            self.already_present += self.pending.2;
                            // Only now are the file's batches committed.
                            self.shared.ledger.close_file(file);
                        } else {
                            self.ingestor.rollback().map_err(plain)?;
                        }
                        self.pending = (0, 0, 0);
                    }
                    Work::FileStarted | Work::FileFinished { .. } => {}
                }
            }
            Ok(())
        })();
        if outcome.is_err() {
            self.shared.failed.store(true, Ordering::Relaxed);
        }
        if self.in_transaction {
            let _ = self.ingestor.rollback();
        }
        outcome
    }

    fn write_batch(&mut self, batch: &EventBatch, ticket: u64) -> Result<(), WriteFailure> {
        let options = self.shared.options;
        let unique = batch.len() as u64;
        let outcome = if options.dry_run {
            self.ingestor.ingest_dry_run(batch).map_err(Error::from)
        } else {
            self.ingestor.ingest(batch)
        };
        let outcome = outcome.map_err(|error| WriteFailure {
            error,
            batch_start: self.shared.ledger.start_of(ticket),
        })?;
        let counts = (
            outcome.stored - outcome.restored,
            outcome.restored,
            unique - outcome.stored,
        );
        if options.strict && !options.dry_run {
            self.pending.0 += counts.0;
            self.pending.1 += counts.1;
            self.pending.2 += counts.2;
        } else {
            self.inserted += counts.0;
            self.restored += counts.1;
            self.already_present += counts.2;
            self.shared.ledger.close(ticket);
        }
        let written = self
            .shared
            .events_written
            .fetch_add(unique, Ordering::Relaxed)
            + unique;
        let elapsed = self.shared.started.elapsed().as_secs_f64().max(1e-9);
        (self.shared.on_progress)(Progress {
            bytes_read: self.shared.bytes_read.load(Ordering::Relaxed),
            events_written: written,
            events_per_second: written as f64 / elapsed,
        });
        Ok(())
    }
}
