//! `metricsctl check [all|ordering|duplicates|partitions|sequence]`: read-only checks with
//! monitoring-grade output.

use chrono::{DateTime, Utc};

use crate::checks::ordering::OrderingOptions;
use crate::checks::{AllChecks, Check, CheckReport, duplicates, ordering, partitions, sequence};
use crate::cli::{CheckAction, CheckAllArgs, CheckCommand, CheckOutputArgs};
use crate::commands;
use crate::config::Context;
use crate::db::{Layout, SchemaFacts, Session, Tx};
use crate::error::{self, What};
use crate::output::CheckFormat;
use crate::output::{self, Destination};
use crate::schema::partitions::DEFAULT_MONTHS_AHEAD;
use crate::status::{CommandResult, CouldNotRun, Failure, Status};

pub fn exec(ctx: &Context, cmd: &CheckCommand) -> CommandResult {
    match &cmd.action {
        None => all(ctx, &cmd.all),
        Some(CheckAction::All(args)) => all(ctx, args),
        Some(CheckAction::Ordering(args)) => {
            let options = OrderingOptions {
                sensor: args.sensor.clone(),
                since: args.since,
                ingested_since: args.ingested_since,
                limit: args.limit.limit,
            };
            run_check(ctx, Check::Ordering, &args.output, |tx, _| {
                Ok(ordering::run(tx, &options)?)
            })
        }
        Some(CheckAction::Duplicates(args)) => {
            run_check(ctx, Check::Duplicates, &args.output, |tx, facts| {
                Ok(duplicates::run(tx, facts, args.limit.limit, args.since)?)
            })
        }
        Some(CheckAction::Partitions(args)) => {
            run_check(ctx, Check::Partitions, &args.output, |tx, facts| {
                partitions::run(tx, facts, args.ahead, false)
            })
        }
        Some(CheckAction::Sequence(args)) => {
            run_check(ctx, Check::Sequence, &args.output, |tx, _| {
                Ok(sequence::run(tx)?)
            })
        }
    }
}

fn all(ctx: &Context, args: &CheckAllArgs) -> CommandResult {
    run_report(ctx, "all", &args.output, true, |session| {
        let facts = session.shared_facts();
        session.read(|tx| every_check(tx, &facts, args.limit.limit, args.since))
    })
}

/// `check all`: every check (partitions too on a partitioned database), in one snapshot; with
/// `since`, ordering and duplicates only over the window from then on. A check the current user
/// may not run is UNKNOWN and says which GRANT it needs; the others still give their verdict.
pub(crate) fn every_check(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    limit: u32,
    since: Option<DateTime<Utc>>,
) -> error::Result<AllChecks> {
    let mut all = AllChecks::new();
    let options = OrderingOptions {
        sensor: None,
        since,
        ingested_since: None,
        limit,
    };
    sub_check(&mut all, tx, facts, Check::Ordering, |tx| {
        Ok(ordering::run(tx, &options)?)
    })?;
    sub_check(&mut all, tx, facts, Check::Duplicates, |tx| {
        Ok(duplicates::run(tx, facts, limit, since)?)
    })?;
    sub_check(&mut all, tx, facts, Check::Sequence, |tx| {
        Ok(sequence::run(tx)?)
    })?;
    if facts.layout() == Some(Layout::Partitioned) {
        sub_check(&mut all, tx, facts, Check::Partitions, |tx| {
            partitions::run(tx, facts, DEFAULT_MONTHS_AHEAD, false)
        })?;
    }
    Ok(all)
}

/// One check of `check all`, in a savepoint of the snapshot's transaction, so that a privilege
/// the server refuses it leaves the others running.
fn sub_check<R: CheckReport>(
    all: &mut AllChecks,
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    check: Check,
    run: impl FnOnce(&mut Tx<'_>) -> error::Result<R>,
) -> error::Result<()> {
    if let Err(error) = check.ensure_privileges(facts) {
        all.add_could_not_run(check, &error);
        return Ok(());
    }
    let mut savepoint = tx.savepoint()?;
    match run(&mut savepoint) {
        Ok(report) => {
            savepoint.commit()?;
            all.add(&report);
            Ok(())
        }
        Err(error) if error.what() == What::Privilege => {
            savepoint.rollback()?;
            all.add_could_not_run(check, &error);
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// Shows a report as a table for people on stdout; its status is the outcome.
pub(crate) fn show_table<R: CheckReport>(ctx: &Context, report: &R) -> CommandResult {
    let status = report.status();
    let text = output::render_check(report, CheckFormat::Table).could_not_run()?;
    deliver(ctx, &Destination::Stdout, CheckFormat::Table, status, &text)?;
    Ok(status)
}

/// Runs one check in a read-only snapshot, once the current user is known to may read what it
/// reads, and delivers its report (see [`run_report`]).
pub fn run_check<R: CheckReport>(
    ctx: &Context,
    check: Check,
    output: &CheckOutputArgs,
    run: impl FnOnce(&mut Tx<'_>, &SchemaFacts) -> error::Result<R>,
) -> CommandResult {
    run_report(ctx, check.name(), output, true, |session| {
        check.ensure_privileges(session.facts())?;
        let facts = session.shared_facts();
        session.read(|tx| run(tx, &facts))
    })
}

/// Connects, checks the schema is there (unless `needs_schema` is false: `migrate status`), runs
/// a report and delivers it; the exit status is the report's. A report that cannot run —
/// unreachable server, missing schema, a privilege lacking, SQL the database refuses, the run's
/// --timeout — is UNKNOWN (nothing was judged), and still answers in the monitoring format asked
/// for.
pub fn run_report<R: CheckReport>(
    ctx: &Context,
    name: &str,
    output: &CheckOutputArgs,
    needs_schema: bool,
    report: impl FnOnce(&mut Session) -> error::Result<R>,
) -> CommandResult {
    let outcome = (|| -> Result<R, Failure> {
        let mut session = commands::open(ctx)?;
        if needs_schema {
            session.facts().require_tables()?;
        }
        Ok(report(&mut session)?)
    })();
    let destination = Destination::from_flag(output.output.as_ref());
    match outcome {
        Ok(report) => {
            let status = report.status();
            let text = output::render_check(&report, output.format).could_not_run()?;
            deliver(ctx, &destination, output.format, status, &text)?;
            Ok(status)
        }
        Err(failure) => {
            let failure = Failure {
                status: Status::Unknown,
                error: failure.error,
            }
            .settled();
            let for_people = matches!(output.format, CheckFormat::Table | CheckFormat::Csv);
            if for_people && destination == Destination::Stdout {
                // People read the error on stderr; stdout stays empty.
                return Err(failure);
            }
            let text = output::render_check_failure(name, output.format, &failure);
            if let Err(lost) = deliver(ctx, &destination, output.format, failure.status, &text) {
                return Err(Failure::could_not_run(
                    failure.error.context(format!("{:#}", lost.error)),
                ));
            }
            Err(failure)
        }
    }
}

/// Writes a report where it goes. Under `--quiet`, a table that says all is well is not
/// printed (a successful cron run prints nothing); formats asked for are always written.
pub fn deliver(
    ctx: &Context,
    destination: &Destination,
    format: CheckFormat,
    status: Status,
    text: &str,
) -> Result<(), Failure> {
    if ctx.console.quiet
        && status == Status::Ok
        && format == CheckFormat::Table
        && *destination == Destination::Stdout
    {
        return Ok(());
    }
    destination.deliver(text).could_not_run()
}
