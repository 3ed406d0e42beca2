//! `metricsctl check [all|ordering|duplicates|partitions]`: read-only checks with
//! monitoring-grade output.

use postgres::Client;

use crate::checks::ordering::OrderingOptions;
use crate::checks::{AllChecks, CheckReport, duplicates, ordering, partitions, sequence};
use chrono::{DateTime, Utc};

use crate::cli::{CheckAction, CheckAllArgs, CheckCommand, CheckOutputArgs};
use crate::commands;
use crate::config::Context;
use crate::db;
use crate::error;
use crate::output::CheckFormat;
use crate::output::{self, Destination};
use crate::schema::partitions::{DEFAULT_MONTHS_AHEAD, Layout};
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
            run_check(ctx, "ordering", &args.output, |client| {
                Ok(ordering::run(client, &options)?)
            })
        }
        Some(CheckAction::Duplicates(args)) => {
            run_check(ctx, "duplicates", &args.output, |client| {
                Ok(duplicates::run(client, args.limit.limit, args.since)?)
            })
        }
        Some(CheckAction::Partitions(args)) => {
            run_check(ctx, "partitions", &args.output, |client| {
                partitions::run(client, args.ahead, false)
            })
        }
        Some(CheckAction::Sequence(args)) => run_check(ctx, "sequence", &args.output, |client| {
            Ok(sequence::run(client)?)
        }),
    }
}

fn all(ctx: &Context, args: &CheckAllArgs) -> CommandResult {
    run_check(ctx, "all", &args.output, |client| {
        every_check(client, args.limit.limit, args.since)
    })
}

/// `check all`: every check (partitions too on a partitioned database); with `since`, ordering
/// and duplicates only over the window from then on.
pub(crate) fn every_check(
    client: &mut Client,
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
    all.add(&ordering::run(client, &options)?);
    all.add(&duplicates::run(client, limit, since)?);
    all.add(&sequence::run(client)?);
    if crate::schema::partitions::layout(client)? == Layout::Partitioned {
        all.add(&partitions::run(client, DEFAULT_MONTHS_AHEAD, false)?);
    }
    Ok(all)
}

/// Shows a report as a table for people on stdout; its status is the outcome.
pub(crate) fn show_table<R: CheckReport>(ctx: &Context, report: &R) -> CommandResult {
    let status = report.status();
    let text = output::render_check(report, CheckFormat::Table).could_not_run()?;
    deliver(ctx, &Destination::Stdout, CheckFormat::Table, status, &text)?;
    Ok(status)
}

/// Connects, checks the schema is there, runs one check and delivers its report; the exit
/// status is the check's. A check that cannot run — unreachable server, missing schema, SQL the
/// database refuses — is UNKNOWN (nothing was judged), and still answers in the monitoring
/// format asked for.
pub fn run_check<R: CheckReport>(
    ctx: &Context,
    name: &str,
    output: &CheckOutputArgs,
    check: impl FnOnce(&mut Client) -> error::Result<R>,
) -> CommandResult {
    run_report(ctx, name, output, true, check)
}

/// [`run_check`], for reports that may also run before the schema exists (`migrate status`).
pub fn run_report<R: CheckReport>(
    ctx: &Context,
    name: &str,
    output: &CheckOutputArgs,
    needs_schema: bool,
    check: impl FnOnce(&mut Client) -> error::Result<R>,
) -> CommandResult {
    let outcome = (|| -> Result<R, Failure> {
        let mut client = commands::connect(ctx)?;
        if needs_schema {
            db::ensure_schema(&mut client)?;
        }
        Ok(check(&mut client)?)
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
            };
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
