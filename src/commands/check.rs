//! `metricsctl check [all|ordering|duplicates|partitions|sequence]`: read-only checks with
//! monitoring-grade output.

use chrono::{DateTime, Utc};

use crate::checks::ordering::OrderingOptions;
use crate::checks::{AllChecks, Check, Subject, duplicates, ordering, partitions, sequence};
use crate::cli::{CheckAction, CheckAllArgs, CheckCommand};
use crate::commands::report::Reporter;
use crate::config::Context;
use crate::db::{SchemaFacts, Tx};
use crate::error::{self, What};
use crate::schema::partitions::DEFAULT_MONTHS_AHEAD;
use crate::status::CommandResult;

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
            Reporter::new(ctx, &args.output)
                .run_check(Check::Ordering, |tx, _| ordering::run(tx, &options))
        }
        Some(CheckAction::Duplicates(args)) => Reporter::new(ctx, &args.output)
            .run_check(Check::Duplicates, |tx, facts| {
                duplicates::run(tx, facts, args.limit.limit, args.since)
            }),
        Some(CheckAction::Partitions(args)) => Reporter::new(ctx, &args.output)
            .run_check(Check::Partitions, |tx, facts| {
                partitions::run(tx, facts, args.ahead, false)
            }),
        Some(CheckAction::Sequence(args)) => {
            Reporter::new(ctx, &args.output).run_check(Check::Sequence, |tx, _| sequence::run(tx))
        }
    }
}

fn all(ctx: &Context, args: &CheckAllArgs) -> CommandResult {
    Reporter::new(ctx, &args.output).run(Subject::All, true, |session| {
        let facts = session.shared_facts();
        session.read(|tx| every_check(tx, &facts, args.limit.limit, args.since))
    })
}

/// `check all`: every check [`Check::in_check_all`] names for the layout, in one snapshot; with
/// `since`, ordering and duplicates only over the window from then on. A check the current user
/// may not run is UNKNOWN and says which GRANT it needs; the others still give their verdict.
pub(crate) fn every_check(
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    limit: u32,
    since: Option<DateTime<Utc>>,
) -> error::Result<AllChecks> {
    let mut all = AllChecks::new();
    for check in Check::in_check_all(facts.layout()) {
        if let Err(error) = check.ensure_privileges(facts) {
            all.add_could_not_run(check, &error);
            continue;
        }
        // In a savepoint of the snapshot's transaction, so that a privilege the server refuses
        // it leaves the others running.
        let mut savepoint = tx.savepoint()?;
        match add_report(&mut all, &mut savepoint, facts, check, limit, since) {
            Ok(()) => savepoint.commit()?,
            Err(error) if error.what() == What::Privilege => {
                savepoint.rollback()?;
                all.add_could_not_run(check, &error);
            }
            Err(error) => return Err(error),
        }
    }
    Ok(all)
}

/// Runs one check of `check all` and adds its report.
fn add_report(
    all: &mut AllChecks,
    tx: &mut Tx<'_>,
    facts: &SchemaFacts,
    check: Check,
    limit: u32,
    since: Option<DateTime<Utc>>,
) -> error::Result<()> {
    match check {
        Check::Ordering => {
            let options = OrderingOptions {
                sensor: None,
                since,
                ingested_since: None,
                limit,
            };
            all.add(&ordering::run(tx, &options)?);
        }
        Check::Duplicates => all.add(&duplicates::run(tx, facts, limit, since)?),
        Check::Sequence => all.add(&sequence::run(tx)?),
        Check::Partitions => all.add(&partitions::run(tx, facts, DEFAULT_MONTHS_AHEAD, false)?),
        // Commands of their own, never in `check all` (see Check::in_check_all).
        Check::Lag | Check::Rate | Check::Migrations => {}
    }
    Ok(())
}
