//! `metricsctl check [all|ordering|duplicates]`: read-only checks with monitoring-grade output.

use postgres::Client;

use crate::checks::ordering::OrderingOptions;
use crate::checks::{AllChecks, CheckReport, duplicates, ordering, partitions, sequence};
use crate::cli::{CheckAction, CheckCommand, CheckOutputArgs, GlobalArgs};
use crate::config::{Context, Environment};
use crate::db;
use crate::output;
use crate::partitions::{DEFAULT_MONTHS_AHEAD, Layout};
use crate::status::{CommandResult, Failure};

pub fn exec(cmd: &CheckCommand, global: &GlobalArgs, env: &Environment) -> CommandResult {
    let connect = match &cmd.action {
        None => &cmd.all.connect,
        Some(CheckAction::All(args)) => &args.connect,
        Some(CheckAction::Ordering(args)) => &args.connect,
        Some(CheckAction::Duplicates(args)) => &args.connect,
        Some(CheckAction::Partitions(args)) => &args.connect,
        Some(CheckAction::Sequence(args)) => &args.connect,
    };
    exec_resolved(&Context::resolve(connect, global, env)?, cmd)
}

/// Runs the check with connection settings already resolved (the demo's sandbox).
pub fn exec_resolved(ctx: &Context, cmd: &CheckCommand) -> CommandResult {
    match &cmd.action {
        None => all(ctx, &cmd.all.output),
        Some(CheckAction::All(args)) => all(ctx, &args.output),
        Some(CheckAction::Ordering(args)) => {
            let options = OrderingOptions {
                sensor: args.sensor.clone(),
                since: args.since,
                limit: args.output.limit,
            };
            run_check(ctx, "ordering", &args.output, |client| {
                Ok(ordering::run(client, &options)?)
            })
        }
        Some(CheckAction::Duplicates(args)) => {
            run_check(ctx, "duplicates", &args.output, |client| {
                Ok(duplicates::run(client, args.output.limit)?)
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

fn all(ctx: &Context, output: &CheckOutputArgs) -> CommandResult {
    run_check(ctx, "all", output, |client| {
        let mut all = AllChecks::new();
        let options = OrderingOptions {
            sensor: None,
            since: None,
            limit: output.limit,
        };
        all.add(&ordering::run(client, &options)?)?;
        all.add(&duplicates::run(client, output.limit)?)?;
        all.add(&sequence::run(client)?)?;
        if crate::partitions::layout(client)? == Layout::Partitioned {
            all.add(&partitions::run(client, DEFAULT_MONTHS_AHEAD, false)?)?;
        }
        Ok(all)
    })
}

/// Connects, checks the schema is there, runs one check and prints it; the exit status is the
/// check's. A check that cannot run still answers in the monitoring format asked for.
pub fn run_check<R: CheckReport>(
    ctx: &Context,
    name: &str,
    output: &CheckOutputArgs,
    check: impl FnOnce(&mut Client) -> Result<R, Failure>,
) -> CommandResult {
    let outcome = (|| {
        let mut client = ctx.connect()?;
        db::ensure_schema(&mut client)?;
        check(&mut client)
    })();
    match outcome {
        Ok(report) => {
            output::print_check(&report, output.format)?;
            Ok(report.status())
        }
        Err(failure) => {
            output::print_check_failure(name, output.format, &failure)?;
            Err(failure)
        }
    }
}
