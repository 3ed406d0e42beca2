//! `metricsctl replay FILE...`: exit 0 all good, 1 some lines rejected, 2 the database refused
//! work, 3 could not run (bad arguments, unreachable database, missing schema, unreadable file).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{ReplayArgs, ReportFormat};
use crate::commands;
use crate::config::Context;
use crate::db::interrupt;
use crate::error::{Error, What, describe_session_error};
use crate::events::open_inputs;
use crate::ingest::Ingestor;
use crate::ingest::replay::{self, ReplayOptions, ReplaySummary};
use crate::output::{self, OutputLost};
use crate::status::{CommandResult, CouldNotRun, Failure, Status};
use anyhow::anyhow;

/// Rejections printed one by one on stderr; the rest are counted (all go to --rejects).
const REJECTIONS_SHOWN: u64 = 20;

pub fn exec(ctx: &Context, args: &ReplayArgs) -> CommandResult {
    let request = Request {
        files: args.files.clone(),
        jobs: if args.strict { 1 } else { args.jobs as usize },
        options: ReplayOptions {
            format: args.input_format,
            batch_size: args.batch_size as usize,
            strict: args.strict,
            dry_run: args.dry_run,
            repair: args.repair,
            rejects: args.rejects.clone(),
        },
        format: args.format,
    };
    run(ctx, &request)
}

/// A replay to run: the inputs, the writers and the options.
pub(crate) struct Request {
    pub files: Vec<String>,
    /// Writers, each on its own connection.
    pub jobs: usize,
    pub options: ReplayOptions,
    pub format: ReportFormat,
}

/// Each writer's connection answers once before anything is read, within `bound`. A connection
/// pooler with fewer server connections than the writers (pgbouncer in session mode, or a dry
/// run's held transactions in any mode) keeps the last ones waiting; said here, before anything
/// is written, rather than in the middle of the run or after the pooler gives up on them.
fn every_writer_answering(
    ingestors: Vec<Ingestor>,
    dry_run: bool,
    bound: Duration,
) -> Result<Vec<Ingestor>, Failure> {
    let writers = ingestors.len();
    let (answered, answers) = std::sync::mpsc::channel();
    for (index, mut ingestor) in ingestors.into_iter().enumerate() {
        let answered = answered.clone();
        // Not scoped: a writer the pooler keeps waiting is left behind when this gives up.
        std::thread::spawn(move || {
            let outcome = ingestor.start(dry_run);
            let _ = answered.send((index, ingestor, outcome));
        });
    }
    drop(answered);
    let deadline = std::time::Instant::now() + bound;
    let mut ready: Vec<Option<Ingestor>> = (0..writers).map(|_| None).collect();
    for _ in 0..writers {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match answers.recv_timeout(left) {
            Ok((index, ingestor, Ok(()))) => ready[index] = Some(ingestor),
            Ok((index, _, Err(error))) => {
                return Err(unanswered(
                    index + 1,
                    writers,
                    &describe_session_error(&error),
                ));
            }
            Err(_) => {
                let first_waiting = ready.iter().position(Option::is_none).unwrap_or(0);
                let why = format!(
                    "no answer within {} (--connect-timeout)",
                    humantime::format_duration(bound)
                );
                return Err(unanswered(first_waiting + 1, writers, &why));
            }
        }
    }
    Ok(ready
        .into_iter()
        .map(|i| i.expect("every writer answered"))
        .collect())
}

/// Writer `writer` of `writers` could not start: nothing was written, and where a pooler may be
/// the cause, what to change.
fn unanswered(writer: usize, writers: usize, why: &str) -> Failure {
    let pooler = if writers > 1 {
        format!(
            " Where a connection pooler sits between, its pool for this database and user \
             (pgbouncer's default_pool_size) may be smaller than the {writers} server \
             connections this replay needs at once (one per --jobs; a dry run holds each \
             for its whole run): lower --jobs, or raise the pool's size."
        )
    } else {
        String::new()
    };
    Failure::from(Error::new(
        What::Unreachable,
        anyhow!(
            "writer {writer} of {writers} got no answer from the server ({why}). Nothing was written.{pooler}"
        ),
    ))
}

/// Replays with a progress bar and rejections on stderr, then the summary; the outcome's status.
pub(crate) fn run(ctx: &Context, request: &Request) -> CommandResult {
    let inputs: Vec<_> = open_inputs(&request.files)
        .could_not_run()?
        .into_iter()
        .map(|input| input.stoppable(interrupt::is_stopped))
        .collect();
    let ingestors = writers(ctx, request)?;
    let options = &request.options;
    let total_bytes: Option<u64> = inputs.iter().map(|i| i.size).sum();
    let progress = progress_bar(ctx, total_bytes);
    let mut shown = 0u64;
    let mut on_reject = |rejection: &replay::Rejection| {
        shown += 1;
        if !ctx.console.verbose {
            return;
        }
        progress.suspend(|| {
            if shown <= REJECTIONS_SHOWN {
                eprintln!("rejected {}", output::escape_control(&rejection.to_string()));
            } else if shown == REJECTIONS_SHOWN + 1 {
                eprintln!(
                    "… more rejections are counted but not shown here (see --rejects FILE or --format json)"
                );
            }
        });
    };
    let on_progress = |at: replay::Progress| {
        progress.set_position(at.bytes_read);
        progress.set_message(format!(
            "{} events written, {:.0} events/s",
            at.events_written, at.events_per_second
        ));
    };
    let watch = replay::Watch {
        on_reject: &mut on_reject,
        on_progress: &on_progress,
        stopped: &interrupt::stop_reason,
    };
    let outcome = replay::replay(ingestors, inputs, options, watch);
    progress.finish_and_clear();
    match outcome {
        Ok(summary) => {
            let all_well = summary.rejected == 0 && summary.stopped_at.is_none();
            print_summary(ctx, &summary, request.format, all_well)?;
            Ok(if summary.rejected > 0 {
                Status::Warning
            } else {
                Status::Ok
            })
        }
        Err(failure) => {
            print_summary(ctx, &failure.summary, request.format, false)?;
            Err(Failure::from(failure.error))
        }
    }
}

/// The writers, each on a connection of its own, once the database is known to take the replay
/// (its tables, the role's privileges, not a standby) and each has answered.
fn writers(ctx: &Context, request: &Request) -> Result<Vec<Ingestor>, Failure> {
    let dry_run = request.options.dry_run;
    let session = commands::open(ctx)?;
    session.facts().require_tables()?;
    crate::ingest::ensure_privileges(session.facts(), dry_run)?;
    crate::schema::partitions::refuse_on_a_standby_as(
        session.facts(),
        if dry_run {
            "replay --dry-run counts what it has seen in a temporary table"
        } else {
            "replay writes"
        },
    )?;
    let mut sessions = Vec::with_capacity(request.jobs);
    for _ in 1..request.jobs {
        sessions.push(session.open_beside(ctx.connect_timeout)?);
    }
    sessions.insert(0, session);
    let mut ingestors = Vec::with_capacity(request.jobs);
    for session in sessions {
        ingestors.push(Ingestor::new(session)?);
    }
    every_writer_answering(ingestors, dry_run, ctx.connect_timeout)
}

fn progress_bar(ctx: &Context, total_bytes: Option<u64>) -> ProgressBar {
    if !ctx.console.progress {
        return ProgressBar::hidden();
    }
    let bar = match total_bytes {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ETA {eta}\n  {msg}",
            )
            .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {binary_bytes} read  {msg}")
                .expect("valid template"),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn print_summary(
    ctx: &Context,
    summary: &ReplaySummary,
    format: ReportFormat,
    all_well: bool,
) -> Result<(), OutputLost> {
    match format {
        ReportFormat::Json => output::print_json(summary),
        ReportFormat::Table => {
            let inserted_label = if summary.dry_run {
                "would insert"
            } else {
                "inserted"
            };
            let mut table = output::table(["replay", "count"]);
            for (label, value) in [
                ("files", summary.files.to_string()),
                ("lines", summary.lines.to_string()),
                ("events", summary.events.to_string()),
                (inserted_label, summary.inserted.to_string()),
                (
                    if summary.dry_run {
                        "would restore"
                    } else {
                        "restored"
                    },
                    summary.restored.to_string(),
                ),
                ("already present", summary.already_present.to_string()),
                ("repeated in input", summary.repeated_in_input.to_string()),
                ("not committed", summary.unconfirmed.to_string()),
                ("rejected", summary.rejected.to_string()),
                ("tombstones", summary.tombstones.to_string()),
                ("elapsed", format!("{:.3} s", summary.elapsed_seconds)),
                ("events/s", format!("{:.0}", summary.events_per_second)),
            ] {
                table.add_row(vec![label.to_string(), value]);
            }
            // --quiet: a run where every line went in prints nothing.
            ctx.console.show(
                if all_well {
                    Status::Ok
                } else {
                    Status::Warning
                },
                table,
            )?;
            if summary.dry_run {
                ctx.console.say("Dry run: nothing was written.");
            }
            if let Some(stopped) = &summary.stopped_at {
                ctx.console.say(format!(
                    "Stopped at {stopped}; nothing from that file was committed."
                ));
            }
            if summary.rejected > 0 && summary.complete {
                match &summary.rejects_file {
                    Some(file) => ctx.console.say(format!(
                        "{} rejected line(s) written verbatim to {file}: fix them and replay that file.",
                        summary.rejected
                    )),
                    None => ctx.console.say(format!(
                        "{} line(s) rejected; add --rejects FILE to keep them for fixing.",
                        summary.rejected
                    )),
                }
            }
            Ok(())
        }
    }
}
