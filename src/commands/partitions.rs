//! `metricsctl partitions enable|create|list|drop`: monthly partitions of metrics.

use indicatif::{ProgressBar, ProgressStyle};

use crate::checks::CheckReport;
use crate::checks::partitions::{self as partitions_check, partition_section};
use crate::cli::{
    PartitionsAction, PartitionsCommand, PartitionsCreateArgs, PartitionsDropArgs,
    PartitionsEnableArgs, PartitionsListArgs, ReportFormat,
};
use crate::commands;
use crate::config::Context;
use crate::error::Error;
use crate::output::{self, OutputLost};
use crate::schema::partitions::{self, RetentionOptions};
use crate::status::{CommandResult, Status};

pub fn exec(ctx: &Context, cmd: &PartitionsCommand) -> CommandResult {
    match &cmd.action {
        PartitionsAction::Enable(args) => enable(ctx, args),
        PartitionsAction::Create(args) => create(ctx, args),
        PartitionsAction::List(args) => list(ctx, args),
        PartitionsAction::Drop(args) => retire(ctx, args),
    }
}

fn enable(ctx: &Context, args: &PartitionsEnableArgs) -> CommandResult {
    let mut client = commands::connect(ctx)?;
    let plan = partitions::plan_enable(&mut client)?;
    if plan.already_partitioned {
        ctx.console
            .say("metrics is already partitioned; nothing to do.");
        if args.format == ReportFormat::Json {
            output::print_json(&plan)?;
        }
        return Ok(Status::Ok);
    }
    if args.dry_run {
        match args.format {
            ReportFormat::Json => output::print_json(&serde_json::json!({
                "dry_run": true,
                "plan": &plan,
                "sql": partitions::enable_statements(&plan),
            }))?,
            ReportFormat::Table => {
                print_months(&plan)?;
                output::print(format!(
                    "\n-- The conversion, in one transaction:\n{}",
                    partitions::enable_statements(&plan).join("\n")
                ))?;
            }
        }
        ctx.console.say(format!(
            "Dry run: {} rows would move into {} monthly partitions; nothing was changed.",
            plan.rows,
            plan.months.len()
        ));
        return Ok(Status::Ok);
    }
    ctx.console.say(format!(
        "Converting metrics ({} rows, {} months) to monthly partitions in one transaction; \
         metrics is locked until it commits…",
        plan.rows,
        plan.months.len()
    ));
    let progress = if ctx.console.progress {
        ProgressBar::new(plan.rows.max(0) as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows ETA {eta}",
            )
            .expect("valid template"),
        )
    } else {
        ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    partitions::enable(&mut client, &plan, args.lock_timeout, |copied| {
        progress.set_position(copied)
    })?;
    progress.finish_and_clear();
    match args.format {
        ReportFormat::Json => output::print_json(&plan)?,
        ReportFormat::Table if ctx.console.quiet => {}
        ReportFormat::Table => print_months(&plan)?,
    }
    ctx.console.say(format!(
        "metrics is now partitioned by UTC month ({} partitions and DEFAULT), every row and id kept, \
         in {:.1} s. Next: `metricsctl partitions create --months 2` for the months ahead.",
        plan.months.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(Status::Ok)
}

fn print_months(plan: &partitions::EnablePlan) -> Result<(), OutputLost> {
    let mut table = output::table(["month", "partition", "rows"]);
    for month in &plan.months {
        table.add_row(vec![
            month.month.to_string(),
            month.partition.clone(),
            month.rows.to_string(),
        ]);
    }
    output::print(table)
}

fn create(ctx: &Context, args: &PartitionsCreateArgs) -> CommandResult {
    let mut client = commands::connect(ctx)?;
    let from = match args.from {
        Some(month) => month,
        None => partitions::current_month(&mut client).map_err(Error::from)?,
    };
    let report = partitions::create(&mut client, from, args.months, args.lock_timeout)?;
    match args.format {
        ReportFormat::Json => output::print_json(&report)?,
        ReportFormat::Table => {
            let mut table = output::table(["month", "partition", "", "rows moved from DEFAULT"]);
            for month in &report.months {
                table.add_row(vec![
                    month.month.to_string(),
                    month.partition.clone(),
                    month.action.to_string(),
                    month.moved_from_default.to_string(),
                ]);
            }
            ctx.console.show(Status::Ok, table)?;
        }
    }
    let created = report
        .months
        .iter()
        .filter(|m| m.action != "present")
        .count();
    ctx.console.say(if created == 0 {
        "Every month already has its partition; nothing changed.".to_string()
    } else {
        format!("Created {created} partition(s).")
    });
    Ok(Status::Ok)
}

pub fn list(ctx: &Context, args: &PartitionsListArgs) -> CommandResult {
    let mut client = commands::connect(ctx)?;
    let report = partitions_check::run(&mut client, partitions::DEFAULT_MONTHS_AHEAD, args.exact)?;
    show_list(ctx, &report, args.format)
}

/// The partitions as a table (and what needs attention), or the report as JSON.
pub(crate) fn show_list(
    ctx: &Context,
    report: &partitions_check::PartitionsReport,
    format: ReportFormat,
) -> CommandResult {
    match format {
        ReportFormat::Json => output::print_json(report)?,
        ReportFormat::Table => {
            let section = partition_section(&report.partitions);
            ctx.console.show(
                Status::Ok,
                format!(
                    "{}\n{}",
                    output::section_table(&section),
                    output::escape_control(&report.summary())
                ),
            )?;
        }
    }
    Ok(Status::Ok)
}

fn retire(ctx: &Context, args: &PartitionsDropArgs) -> CommandResult {
    let mut client = commands::connect(ctx)?;
    let options = RetentionOptions {
        older_than_months: args.older_than,
        detach: args.detach,
        forget_guard_rows: args.forget_guard_rows,
        dry_run: args.dry_run,
    };
    let report = partitions::retire(&mut client, options, args.lock_timeout)?;
    let count = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".to_string());
    match args.format {
        ReportFormat::Json => output::print_json(&report)?,
        ReportFormat::Table => {
            let mut table = output::table([
                "partition",
                "month",
                "rows (estimate)",
                "events retired (guard rows kept)",
                "guard rows deleted",
            ]);
            for p in &report.partitions {
                table.add_row(vec![
                    output::escape_control(&p.partition).into_owned(),
                    p.month.to_string(),
                    count(p.estimated_rows.map(|n| n as u64)),
                    count(p.events_retired),
                    count(p.guard_rows_deleted),
                ]);
            }
            if !report.partitions.is_empty() {
                ctx.console.show(Status::Ok, table)?;
            }
        }
    }
    let verb = if args.dry_run {
        format!("would be {}", report.action)
    } else {
        report.action.to_string()
    };
    ctx.console.say(format!(
        "{} partition(s) ending before {} {verb}.",
        report.partitions.len(),
        report.cutoff
    ));
    if let Some(deleted) = report.earlier_guard_rows_deleted {
        ctx.console.say(format!(
            "{deleted} guard row(s) of events retired earlier (months before {}) deleted.",
            report.cutoff
        ));
    }
    if !args.forget_guard_rows && !report.partitions.is_empty() {
        ctx.console.say(
            "Their events stay retired: their guard rows are kept, so neither the consumer nor a \
             replay stores them again. To reclaim that space instead, add --forget-guard-rows.",
        );
    }
    Ok(Status::Ok)
}
