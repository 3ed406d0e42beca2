//! Replaying event files through the idempotent insert path: streaming, in batches, with every
//! rejected record named by file, line and reason and kept verbatim for fixing.
//!
//! One thread reads and validates the files and cuts batches; `jobs` writer threads, each with
//! its own connection, send them through the guard. Events are routed to writers by sensor, so a
//! sensor's events are always written by one writer in input order: `metrics.id` keeps delivery
//! order within a sensor. Bounded channels keep memory flat (a few batches in flight per writer).

use std::collections::BTreeMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, anyhow};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::events::{Event, EventReader, Format, InputFile, Parsed, Record};
use crate::ingest::{EventBatch, Ingestor};

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
    /// Parse, validate and count what is already present; write nothing.
    pub dry_run: bool,
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

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// What a replay did. With `dry_run`, `inserted` counts what would be inserted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub dry_run: bool,
    pub files: u64,
    pub lines: u64,
    /// Valid events read.
    pub events: u64,
    pub inserted: u64,
    /// Events whose id the database already held (including ones an earlier batch of this
    /// replay inserted).
    pub already_present: u64,
    /// Repeats of an event id within one batch, dropped before the database saw them.
    pub repeated_in_input: u64,
    pub rejected: u64,
    pub tombstones: u64,
    pub elapsed_seconds: f64,
    pub events_per_second: f64,
    pub rejects_file: Option<String>,
    /// The first rejections, with file, line and reason.
    pub rejections: Vec<Rejection>,
    /// `--strict` stopped here (`file:line`); nothing from that file was committed.
    pub stopped_at: Option<String>,
}

/// Why a replay could not finish, with what it had done by then.
#[derive(Debug)]
pub struct ReplayError {
    pub summary: Box<ReplaySummary>,
    pub cause: ReplayErrorCause,
    pub error: anyhow::Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayErrorCause {
    /// A file could not be read (unreadable, truncated gzip, unusable CSV header).
    Input,
    /// The database refused the work or went away.
    Database,
}

/// What the reading thread hands to a writer, in input order.
enum Work {
    FileStarted,
    Batch {
        batch: EventBatch,
        ticket: u64,
    },
    /// The file was read to its end, or `--strict` stopped in it (`kept == false`).
    FileFinished {
        kept: bool,
    },
}

/// Where each batch that is read but not yet committed starts, so a failure can say up to where
/// everything is committed.
#[derive(Default)]
struct InFlight {
    next_ticket: u64,
    started_at: BTreeMap<u64, (Arc<str>, u64)>,
}

impl InFlight {
    fn issue(&mut self, file: &Arc<str>, first_line: u64) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.started_at.insert(ticket, (file.clone(), first_line));
        ticket
    }

    fn done(&mut self, ticket: u64) {
        self.started_at.remove(&ticket);
    }

    /// The earliest event that may not be committed.
    fn oldest(&self) -> Option<&(Arc<str>, u64)> {
        self.started_at.values().next()
    }
}

/// State the reader and the writers share.
struct Shared<'a> {
    options: &'a ReplayOptions,
    progress: &'a ProgressBar,
    started: Instant,
    bytes_read: Arc<AtomicU64>,
    events_written: AtomicU64,
    in_flight: Mutex<InFlight>,
    /// Set by the first writer that fails: everyone stops.
    failed: AtomicBool,
}

/// Replays `inputs` in order, with one writer per ingestor (`--strict` needs exactly one).
/// `on_reject` hears about every rejected record as it happens.
pub fn replay(
    ingestors: Vec<Ingestor>,
    inputs: Vec<InputFile>,
    options: &ReplayOptions,
    progress: &ProgressBar,
    on_reject: &mut (dyn FnMut(&Rejection) + Send),
) -> Result<ReplaySummary, ReplayError> {
    assert!(!ingestors.is_empty(), "at least one writer");
    assert!(
        !options.strict || ingestors.len() == 1,
        "--strict keeps a file in one transaction, so one writer"
    );
    let rejects = match &options.rejects {
        Some(path) => Some(BufWriter::new(File::create(path).map_err(|e| {
            ReplayError {
                summary: Box::default(),
                cause: ReplayErrorCause::Input,
                error: anyhow!(e)
                    .context(format!("cannot create the rejects file {}", path.display())),
            }
        })?)),
        None => None,
    };
    let shared = Shared {
        options,
        progress,
        started: Instant::now(),
        bytes_read: Arc::new(AtomicU64::new(0)),
        events_written: AtomicU64::new(0),
        in_flight: Mutex::new(InFlight::default()),
        failed: AtomicBool::new(false),
    };
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..ingestors.len())
        .map(|_| sync_channel::<Work>(BATCHES_IN_FLIGHT))
        .unzip();
    let mut reading = Reading {
        shared: &shared,
        on_reject,
        rejects,
        summary: ReplaySummary::default(),
    };
    let mut writers: Vec<Writer> = ingestors
        .into_iter()
        .map(|ingestor| Writer {
            ingestor,
            shared: &shared,
            inserted: 0,
            already_present: 0,
        })
        .collect();

    let (read_outcome, write_outcomes) = std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .iter_mut()
            .zip(receivers)
            .map(|(writer, work)| scope.spawn(move || writer.write_all(work)))
            .collect();
        let read_outcome = reading.read_all(inputs, senders);
        let write_outcomes: Vec<anyhow::Result<()>> = handles
            .into_iter()
            .map(|h| h.join().expect("writer threads do not panic"))
            .collect();
        (read_outcome, write_outcomes)
    });

    let mut summary = reading.summary;
    summary.dry_run = options.dry_run;
    summary.rejects_file = options.rejects.as_ref().map(|p| p.display().to_string());
    summary.inserted = writers.iter().map(|w| w.inserted).sum();
    summary.already_present = writers.iter().map(|w| w.already_present).sum();
    let elapsed = shared.started.elapsed().as_secs_f64();
    summary.elapsed_seconds = (elapsed * 1000.0).round() / 1000.0;
    summary.events_per_second = if elapsed > 0.0 {
        (summary.events as f64 / elapsed).round()
    } else {
        0.0
    };

    let committed = match shared.in_flight.lock().expect("not poisoned").oldest() {
        Some((file, line)) => format!("everything before {file}:{line} is committed"),
        None if summary.inserted + summary.already_present > 0 => {
            "everything read so far is committed".to_string()
        }
        None => "nothing was committed".to_string(),
    };
    let rerun =
        "Rerun the same command to finish: events already stored are skipped, never duplicated";
    // A writer's failure comes first: it also ends the reading, which then sees closed channels.
    if let Some(error) = write_outcomes.into_iter().find_map(Result::err) {
        return Err(ReplayError {
            summary: Box::new(summary),
            cause: ReplayErrorCause::Database,
            error: error.context(format!("the replay stopped; {committed}. {rerun}")),
        });
    }
    if let Err(error) = read_outcome {
        return Err(ReplayError {
            summary: Box::new(summary),
            cause: ReplayErrorCause::Input,
            error: error.context(format!("the replay stopped; {committed}. {rerun}")),
        });
    }
    Ok(summary)
}

/// The reading side: files to validated batches, rejects to the rejects file.
struct Reading<'a> {
    shared: &'a Shared<'a>,
    on_reject: &'a mut (dyn FnMut(&Rejection) + Send),
    rejects: Option<BufWriter<File>>,
    summary: ReplaySummary,
}

/// A writer hung up (it failed); reading just stops.
struct WriterGone;

/// Events a batch makes room for up front; it grows as events arrive, so a large --batch-size
/// (times --jobs writers) is never allocated before there are events to fill it. The default
/// batch (5,000) fits, so the usual path allocates exactly as before.
const PREALLOCATED_EVENTS: usize = 8192;

/// One batch being filled per writer.
struct Shards {
    batches: Vec<EventBatch>,
    first_lines: Vec<u64>,
    batch_size: usize,
}

impl Shards {
    fn new(writers: usize, batch_size: usize) -> Shards {
        Shards {
            batches: (0..writers)
                .map(|_| EventBatch::with_capacity(batch_size.min(PREALLOCATED_EVENTS)))
                .collect(),
            first_lines: vec![0; writers],
            batch_size,
        }
    }

    /// The writer for a sensor: always the same one, so its events stay in order.
    fn shard_of(&self, event: &Event) -> usize {
        if self.batches.len() == 1 {
            return 0;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        event.sensor_id.hash(&mut hasher);
        (hasher.finish() % self.batches.len() as u64) as usize
    }

    /// Adds an event; returns the shard whose batch is now full.
    fn push(&mut self, event: Event, line: u64) -> Option<usize> {
        let shard = self.shard_of(&event);
        if self.batches[shard].is_empty() {
            self.first_lines[shard] = line;
        }
        self.batches[shard].push(event);
        (self.batches[shard].len() >= self.batch_size).then_some(shard)
    }

    fn take(&mut self, shard: usize) -> (EventBatch, u64) {
        let batch = std::mem::replace(
            &mut self.batches[shard],
            EventBatch::with_capacity(self.batch_size.min(PREALLOCATED_EVENTS)),
        );
        (batch, self.first_lines[shard])
    }
}

impl Reading<'_> {
    fn read_all(
        &mut self,
        inputs: Vec<InputFile>,
        work: Vec<SyncSender<Work>>,
    ) -> anyhow::Result<()> {
        for input in inputs {
            match self.read_file(input, &work) {
                Ok(true) => {}
                Ok(false) => break, // --strict stopped, or a writer failed
                Err(error) => return Err(error),
            }
        }
        drop(work);
        if let Some(writer) = self.rejects.as_mut() {
            writer.flush().context("writing the rejects file")?;
        }
        Ok(())
    }

    /// Reads one file; `Ok(false)` means stop the whole replay.
    fn read_file(&mut self, input: InputFile, work: &[SyncSender<Work>]) -> anyhow::Result<bool> {
        let options = self.shared.options;
        let name: Arc<str> = Arc::from(input.name.as_str());
        self.summary.files += 1;
        let reader = input
            .into_reader(self.shared.bytes_read.clone())
            .with_context(|| format!("cannot read {name}"))?;
        let described = options
            .format
            .map(|f| f.to_string())
            .unwrap_or_else(|| "event".to_string());
        let mut reader = EventReader::new(reader, options.format)
            .with_context(|| format!("{name} is not a usable {described} file"))?;
        if broadcast(work, || Work::FileStarted).is_err() {
            return Ok(false);
        }
        let mut shards = Shards::new(work.len(), options.batch_size);
        let mut header_written = false;
        let mut kept = true;
        let outcome: anyhow::Result<()> = loop {
            if self.shared.failed.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let record = match reader.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => break Ok(()),
                Err(error) => {
                    break Err(anyhow!(error).context(format!(
                        "reading {name} failed after line {}",
                        reader.lines_read()
                    )));
                }
            };
            let line = record.line;
            match record.parsed {
                Ok(Parsed::Event(event)) => {
                    self.summary.events += 1;
                    if let Some(full) = shards.push(event, line)
                        && self
                            .send_batch(&work[full], &mut shards, full, &name)
                            .is_err()
                    {
                        return Ok(false);
                    }
                }
                Ok(Parsed::Tombstone) => self.summary.tombstones += 1,
                Err(_) => {
                    self.reject(&name, &reader, record, &mut header_written)?;
                    if options.strict {
                        self.summary.stopped_at = Some(format!("{name}:{line}"));
                        kept = false;
                        break Ok(());
                    }
                }
            }
        };
        self.summary.lines += reader.lines_read();
        outcome?;
        if kept {
            // Batches never span files, so "committed through a line" stays per file.
            for (shard, sender) in work.iter().enumerate() {
                if !shards.batches[shard].is_empty()
                    && self.send_batch(sender, &mut shards, shard, &name).is_err()
                {
                    return Ok(false);
                }
            }
        }
        Ok(broadcast(work, || Work::FileFinished { kept }).is_ok() && kept)
    }

    fn send_batch(
        &mut self,
        work: &SyncSender<Work>,
        shards: &mut Shards,
        shard: usize,
        file: &Arc<str>,
    ) -> Result<(), WriterGone> {
        let (mut batch, first_line) = shards.take(shard);
        self.summary.repeated_in_input += batch.prepare() as u64;
        let ticket = self
            .shared
            .in_flight
            .lock()
            .expect("not poisoned")
            .issue(file, first_line);
        work.send(Work::Batch { batch, ticket })
            .map_err(|_| WriterGone)
    }

    fn reject(
        &mut self,
        name: &str,
        reader: &EventReader,
        record: Record,
        header_written: &mut bool,
    ) -> anyhow::Result<()> {
        let reason = record.parsed.expect_err("a rejected record");
        self.summary.rejected += 1;
        let rejection = Rejection {
            file: name.to_string(),
            line: record.line,
            reason: reason.to_string(),
        };
        (self.on_reject)(&rejection);
        if self.summary.rejections.len() < REJECTIONS_IN_SUMMARY {
            self.summary.rejections.push(rejection);
        }
        if let Some(writer) = self.rejects.as_mut() {
            let mut write = || -> std::io::Result<()> {
                // A CSV rejects file gets the header row, so it can be fixed and replayed.
                if !*header_written && let Some(header) = reader.csv_header_line() {
                    writer.write_all(header)?;
                    writer.write_all(b"\n")?;
                }
                *header_written = true;
                writer.write_all(&record.raw)?;
                writer.write_all(b"\n")
            };
            write().context("writing the rejects file")?;
        }
        Ok(())
    }
}

fn broadcast(work: &[SyncSender<Work>], item: impl Fn() -> Work) -> Result<(), WriterGone> {
    for writer in work {
        writer.send(item()).map_err(|_| WriterGone)?;
    }
    Ok(())
}

/// A writing thread: batches through the guard; with `--strict`, a file in one transaction.
struct Writer<'a> {
    ingestor: Ingestor,
    shared: &'a Shared<'a>,
    inserted: u64,
    already_present: u64,
}

impl Writer<'_> {
    /// Consumes work until the reader is done. The first database error ends it; dropping the
    /// receiver and raising `failed` stops the reader and the other writers.
    fn write_all(&mut self, work: Receiver<Work>) -> anyhow::Result<()> {
        let options = self.shared.options;
        let in_one_transaction = options.strict && !options.dry_run;
        let outcome = (|| -> anyhow::Result<()> {
            for item in work.iter() {
                if self.shared.failed.load(Ordering::Relaxed) {
                    break;
                }
                match item {
                    Work::FileStarted if in_one_transaction => {
                        self.ingestor.begin().map_err(database_error)?
                    }
                    Work::Batch { batch, ticket } => self.write_batch(&batch, ticket)?,
                    Work::FileFinished { kept } if in_one_transaction => {
                        if kept {
                            self.ingestor.commit().map_err(database_error)?;
                        } else {
                            self.ingestor.rollback().map_err(database_error)?;
                        }
                        // Only now are the file's batches committed.
                        self.shared
                            .in_flight
                            .lock()
                            .expect("not poisoned")
                            .started_at
                            .clear();
                    }
                    Work::FileStarted | Work::FileFinished { .. } => {}
                }
            }
            Ok(())
        })();
        if outcome.is_err() {
            self.shared.failed.store(true, Ordering::Relaxed);
            if in_one_transaction {
                let _ = self.ingestor.rollback();
            }
        }
        outcome
    }

    fn write_batch(&mut self, batch: &EventBatch, ticket: u64) -> anyhow::Result<()> {
        let unique = batch.len() as u64;
        if self.shared.options.dry_run {
            let present = self.ingestor.count_present(batch).map_err(database_error)?;
            self.already_present += present;
            self.inserted += unique - present;
        } else {
            let outcome = self.ingestor.ingest(batch).map_err(|e| {
                let (file, line) = self
                    .shared
                    .in_flight
                    .lock()
                    .expect("not poisoned")
                    .started_at
                    .get(&ticket)
                    .cloned()
                    .unwrap_or_else(|| (Arc::from("?"), 0));
                database_error(e).context(format!(
                    "the database refused a batch starting at {file}:{line}"
                ))
            })?;
            self.inserted += outcome.stored;
            self.already_present += unique - outcome.stored;
        }
        if !self.shared.options.strict || self.shared.options.dry_run {
            self.shared
                .in_flight
                .lock()
                .expect("not poisoned")
                .done(ticket);
        }
        let written = self
            .shared
            .events_written
            .fetch_add(unique, Ordering::Relaxed)
            + unique;
        self.show_progress(written);
        Ok(())
    }

    fn show_progress(&self, written: u64) {
        let elapsed = self.shared.started.elapsed().as_secs_f64().max(1e-9);
        self.shared
            .progress
            .set_position(self.shared.bytes_read.load(Ordering::Relaxed));
        self.shared.progress.set_message(format!(
            "{written} events written, {:.0} events/s",
            written as f64 / elapsed,
        ));
    }
}

fn database_error(error: postgres::Error) -> anyhow::Error {
    match error.as_db_error() {
        Some(db) => anyhow!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None if error.is_closed() => anyhow!("the connection to PostgreSQL was lost"),
        None => anyhow!(error),
    }
}
