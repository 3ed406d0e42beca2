//! `metricsctl repair`: fix what the checks find, then check again. Exit 0 when nothing is left to
//! repair, 1 when something needs the operator (lost metrics without --release-lost), 2 when the
//! database refused a repair, 3 when it could not run (a lock not granted in time, no schema).

use crate::checks::{CheckReport, duplicates, sequence};
use crate::cli::{RepairArgs, ReportFormat};
use crate::commands;
use crate::config::Context;
use crate::error::{self};
use crate::ingest::repair::{self, RepairOptions, RepairReport};
use crate::output::{self, OutputLost};
use crate::status::{CommandResult, Status};

pub fn exec(ctx: &Context, args: &RepairArgs) -> CommandResult {
    let options = RepairOptions {
        dry_run: args.dry_run,
        release_lost: args.release_lost,
        lock_timeout: args.lock_timeout,
        limit: args.limit as usize,
    };
    run(ctx, &options, args.format)
}

/// Repairs, checks again, shows both; exit status as the module says.
pub(crate) fn run(ctx: &Context, options: &RepairOptions, format: ReportFormat) -> CommandResult {
    let mut session = commands::open(ctx)?;
    session.facts().require_tables()?;
    let limit = options.limit as u32;
    let report = repair::repair(&mut session, options)?;
    // The check afterwards: what the database holds now.
    let facts = session.shared_facts();
    let (duplicates, sequence) = session.read(|tx| -> error::Result<_> {
        Ok((
            duplicates::run(tx, &facts, limit, None)?,
            sequence::run(tx)?,
        ))
    })?;
    let healthy = duplicates.status() == Status::Ok && sequence.status() == Status::Ok;
    let status = if report.needs_operator() || (!report.dry_run && !healthy) {
        Status::Warning
    } else {
        Status::Ok
    };
    match format {
        ReportFormat::Json => output::print_json(&serde_json::json!({
            "dry_run": report.dry_run,
            "layout": report.layout,
            "repairs": &report.steps,
            "changed": report.changed(),
            "check_after": {
                "duplicates": { "status": duplicates.status(), "summary": duplicates.summary() },
                "sequence": { "status": sequence.status(), "summary": sequence.summary() },
            },
        }))?,
        ReportFormat::Table => print_table(ctx, status, &report)?,
    }
    let verb = if report.dry_run {
        "would change"
    } else {
        "changed"
    };
    ctx.console
        .say(format!("Repair {verb} {} row(s).", report.changed()));
    if report.dry_run {
        ctx.console
            .say("Dry run: the repairs ran and were rolled back; nothing was changed.");
    }
    ctx.console.say(format!(
        "{}: duplicates {} ({}); sequence {} ({}).",
        if report.dry_run {
            "Check now (nothing was changed)"
        } else {
            "Check afterwards"
        },
        duplicates.status(),
        duplicates.summary(),
        sequence.status(),
        sequence.summary()
    ));
    Ok(status)
}

/// The repairs for people (nothing under --quiet when all is well).
fn print_table(ctx: &Context, status: Status, report: &RepairReport) -> Result<(), OutputLost> {
    let mut table = output::table(["repair", "rows", "what", "constraint restored"]);
    for step in &report.steps {
        let constraint = step.constraint_restored.as_deref().unwrap_or("-");
        let action = if step.changed == 0 && step.constraint_restored.is_none() {
            "nothing to repair".to_string()
        } else {
            step.action.clone()
        };
        table.add_row(vec![
            step.kind.to_string(),
            step.changed.to_string(),
            action,
            constraint.to_string(),
        ]);
    }
    ctx.console.show(status, table)?;
    for step in report.steps.iter().filter(|s| !s.rows.is_empty()) {
        let mut rows = output::table([step.kind]);
        for row in &step.rows {
            rows.add_row(vec![row.clone()]);
        }
        if step.changed > step.rows.len() as u64 {
            rows.add_row(vec![format!(
                "… and {} more (--limit)",
                step.changed - step.rows.len() as u64
            )]);
        }
        ctx.console.show(status, rows)?;
    }
    Ok(())
}
