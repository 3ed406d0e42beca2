//! `metricsctl partitions enable|create|list|drop`: monthly partitions of metrics.

use indicatif::{ProgressBar, ProgressStyle};

use crate::checks::CheckReport;
use crate::checks::partitions::{self as partitions_check, partition_section};
use crate::cli::{
    PartitionsAction, PartitionsAttachArgs, PartitionsCommand, PartitionsCreateArgs,
    PartitionsDropArgs, PartitionsEnableArgs, PartitionsListArgs, ReportFormat,
};
use crate::commands;
use crate::config::Context;
use crate::db::{Layout, Session};
use crate::error::Error;
use crate::output::{self, OutputLost};
use crate::schema::conversion::{self, OnlineOptions};
use crate::schema::partitions::{self, RetentionOptions};
use crate::status::{CommandResult, Status};

pub fn exec(ctx: &Context, cmd: &PartitionsCommand) -> CommandResult {
    match &cmd.action {
        PartitionsAction::Enable(args) => enable(ctx, args),
        PartitionsAction::Create(args) => create(ctx, args),
        PartitionsAction::List(args) => list(ctx, args),
        PartitionsAction::Attach(args) => attach(ctx, args),
        PartitionsAction::Drop(args) => retire(ctx, args),
    }
}

fn enable(ctx: &Context, args: &PartitionsEnableArgs) -> CommandResult {
    let mut session = commands::open(ctx)?;
    session.facts().require_tables()?;
    let options = OnlineOptions {
        batch_size: args.batch_size,
        copy_share: args.copy_share,
        lock_timeout: args.lock_timeout,
        lock_attempts: args.lock_attempts,
        wait_for_other_run: OTHER_RUN_WAIT,
    };
    if args.status {
        return show_conversion(&mut session, args.format);
    }
    if args.abandon {
        let abandoned = conversion::abandon(&mut session, &options, |holder| {
            ctx.console.say(format!(
                "Waiting for the running partitions enable to let go: held by {holder}"
            ))
        })?;
        ctx.console.say(if abandoned {
            "The unfinished conversion is undone: metrics is the plain table it was."
        } else {
            "No conversion was in progress; nothing changed."
        });
        return Ok(Status::Ok);
    }
    if !args.dry_run {
        partitions::refuse_on_a_standby(session.facts(), "partitions enable")?;
    }
    partitions::refuse_distributed_conversion(session.facts())?;
    let plan = if args.offline {
        session.read(partitions::plan_enable)?
    } else {
        conversion::plan(&mut session)?
    };
    if plan.already_partitioned && conversion::state(&mut session)?.is_none() {
        ctx.console
            .say("metrics is already partitioned; nothing to do.");
        if args.format == ReportFormat::Json {
            output::print_json(&plan)?;
        }
        return Ok(Status::Ok);
    }
    if args.dry_run {
        return dry_run_enable(ctx, &session, &plan, args);
    }
    if args.offline {
        return enable_offline(ctx, &mut session, &plan, args);
    }
    enable_online(ctx, &mut session, &plan, &options, args.format)
}

/// How long `partitions enable` waits for another run (or a killed run's session) to let go.
const OTHER_RUN_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) fn enable_online(
    ctx: &Context,
    session: &mut Session,
    plan: &partitions::EnablePlan,
    options: &OnlineOptions,
    format: ReportFormat,
) -> CommandResult {
    ctx.console.say(format!(
        "Converting metrics (~{} rows) to monthly partitions online: writers keep inserting; \
         locks they wait on are held for moments, at most {} each. Stopped or killed, run it \
         again to go on.",
        plan.rows,
        humantime::format_duration(options.lock_timeout)
    ));
    let progress = if ctx.console.progress {
        ProgressBar::new(plan.rows.max(0) as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows {per_sec} ETA {eta}\n  {msg}",
            )
            .expect("valid template"),
        )
    } else {
        ProgressBar::hidden()
    };
    let mut on_progress = |step: conversion::Progress| match step {
        conversion::Progress::Phase(phase) => progress.set_message(phase),
        conversion::Progress::Copied { rows, estimate } => {
            progress.set_length(estimate);
            progress.set_position(rows);
        }
        conversion::Progress::Indexing { done, of } => progress.set_message(format!(
            "building the guide's indexes: partition {} of {of}",
            done + 1
        )),
    };
    let report = conversion::convert(session, options, &mut on_progress, |holder| {
        ctx.console.say(format!(
            "Waiting for another partitions enable to let go: held by {holder}"
        ))
    })?;
    progress.finish_and_clear();
    match format {
        ReportFormat::Json => output::print_json(&report)?,
        ReportFormat::Table => {}
    }
    if report.already_partitioned {
        ctx.console
            .say("metrics is already partitioned; nothing to do.");
    } else {
        ctx.console.say(format!(
            "metrics is now partitioned by UTC month ({} partitions and DEFAULT), every row and \
             id kept, {} rows copied{} in {:.1} s{}.",
            report.months.len(),
            report.rows_copied,
            if report.resumed {
                " (resuming an interrupted run)"
            } else {
                ""
            },
            report.elapsed_seconds,
            if report.lock_retries > 0 {
                format!(
                    "; {} lock attempts were given up and retried",
                    report.lock_retries
                )
            } else {
                String::new()
            }
        ));
    }
    Ok(Status::Ok)
}

fn enable_offline(
    ctx: &Context,
    session: &mut Session,
    plan: &partitions::EnablePlan,
    args: &PartitionsEnableArgs,
) -> CommandResult {
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
    partitions::enable(session, plan, args.lock_timeout, |copied| {
        progress.set_position(copied)
    })?;
    progress.finish_and_clear();
    match args.format {
        ReportFormat::Json => output::print_json(plan)?,
        ReportFormat::Table if ctx.console.quiet => {}
        ReportFormat::Table => print_months(plan)?,
    }
    ctx.console.say(format!(
        "metrics is now partitioned by UTC month ({} partitions and DEFAULT), every row and id kept, \
         in {:.1} s. Next: `metricsctl partitions create --months 2` for the months ahead.",
        plan.months.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(Status::Ok)
}

fn dry_run_enable(
    ctx: &Context,
    session: &Session,
    plan: &partitions::EnablePlan,
    args: &PartitionsEnableArgs,
) -> CommandResult {
    let facts = session.facts();
    let steps: Vec<(String, String)> = if args.offline {
        vec![(
            "the conversion, in one transaction (metrics locked until it commits)".to_string(),
            partitions::enable_statements(facts, plan).join("\n"),
        )]
    } else {
        conversion::plan_statements(
            facts,
            &plan.months.iter().map(|m| m.month).collect::<Vec<_>>(),
        )
    };
    match args.format {
        ReportFormat::Json => output::print_json(&serde_json::json!({
            "dry_run": true,
            "offline": args.offline,
            "plan": plan,
            "steps": steps
                .iter()
                .map(|(step, sql)| serde_json::json!({"step": step, "sql": sql}))
                .collect::<Vec<_>>(),
        }))?,
        ReportFormat::Table => {
            print_months(plan)?;
            for (step, sql) in &steps {
                output::print(format!("\n-- {step}:\n{sql}"))?;
            }
        }
    }
    ctx.console.say(format!(
        "Dry run: {} rows would move into {} monthly partitions; nothing was changed.",
        plan.rows,
        plan.months.len()
    ));
    Ok(Status::Ok)
}

/// `partitions enable --status`.
fn show_conversion(session: &mut Session, format: ReportFormat) -> CommandResult {
    let state = conversion::state(session)?;
    let layout = session.read(partitions::layout)?;
    match format {
        ReportFormat::Json => output::print_json(&serde_json::json!({
            "layout": layout,
            "conversion": state,
        }))?,
        ReportFormat::Table => match &state {
            None => output::print(format!(
                "No conversion in progress; metrics is {}.",
                match layout {
                    Layout::Plain => "a plain table",
                    Layout::Partitioned => "partitioned",
                }
            ))?,
            Some(state) => {
                let mut table = output::table(["conversion", "value"]);
                for (what, value) in [
                    ("phase", state.phase.clone()),
                    ("started", state.started_at.to_rfc3339()),
                    (
                        "rows copied",
                        copied_of(state.rows_copied, state.rows_estimate),
                    ),
                    (
                        "stopped by",
                        state.stopped_by.clone().unwrap_or_else(|| "-".into()),
                    ),
                    (
                        "driven by",
                        match (state.pid, state.running) {
                            (Some(pid), true) => format!(
                                "pid {pid}, last seen {:.0}s ago",
                                state.heartbeat_age_seconds
                            ),
                            _ => "no session: interrupted; run partitions enable to go on"
                                .to_string(),
                        },
                    ),
                ] {
                    table.add_row(vec![what.to_string(), value]);
                }
                output::print(table)?;
            }
        },
    }
    Ok(Status::Ok)
}
/// "1200 of ~5000", or "1200 (the total is unknown: metrics was never analyzed)".
fn copied_of(copied: i64, estimate: i64) -> String {
    if estimate > 0 && estimate >= copied {
        format!("{copied} of ~{estimate}")
    } else {
        format!(
            "{copied} (the total is not known: the planner's estimate is missing; ANALYZE metrics to have one)"
        )
    }
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
    let mut session = commands::open(ctx)?;
    let from = match args.from {
        Some(month) => month,
        None => session
            .read(partitions::current_month)
            .map_err(Error::from)?,
    };
    let options = partitions::CreateOptions {
        from,
        months_ahead: args.months,
        lock_timeout: args.lock_timeout,
        fill_gaps: !args.no_fill,
        dry_run: args.dry_run,
    };
    let report = partitions::create(&mut session, options)?;
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
    ctx.console.say(match (created, args.dry_run) {
        (0, _) => "Every month already has its partition; nothing changed.".to_string(),
        (_, true) => format!("Dry run: {created} partition(s) would be created; nothing changed."),
        (_, false) => format!("Created {created} partition(s)."),
    });
    Ok(Status::Ok)
}

fn attach(ctx: &Context, args: &PartitionsAttachArgs) -> CommandResult {
    let mut session = commands::open(ctx)?;
    let report = partitions::attach(&mut session, args.month, args.lock_timeout)?;
    match args.format {
        ReportFormat::Json => output::print_json(&report)?,
        ReportFormat::Table => {}
    }
    ctx.console.say(format!(
        "{} is the partition of {} again ({} rows moved in from DEFAULT, {} retired events \
         stored again).",
        report.partition, report.month, report.moved_from_default, report.events_unretired
    ));
    Ok(Status::Ok)
}

pub fn list(ctx: &Context, args: &PartitionsListArgs) -> CommandResult {
    let mut session = commands::open(ctx)?;
    let facts = session.shared_facts();
    let report = session.read(|tx| {
        partitions_check::run(tx, &facts, partitions::DEFAULT_MONTHS_AHEAD, args.exact)
    })?;
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
    let mut session = commands::open(ctx)?;
    let options = RetentionOptions {
        older_than_months: args.older_than,
        detach: args.detach,
        forget_guard_rows: args.forget_guard_rows,
        dry_run: args.dry_run,
    };
    let report = partitions::retire(&mut session, options, args.lock_timeout)?;
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
