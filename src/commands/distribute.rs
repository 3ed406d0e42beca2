//! `metricsctl distribute`: the populated single-node tables converted to the distributed
//! layout on a Citus coordinator, in place; `--status` and `--dry-run` change nothing.

use crate::cli::{DistributeArgs, ReportFormat};
use crate::commands;
use crate::config::Context;
use crate::output;
use crate::schema::distribution::{self, DistributeObserver, DistributionProgress};
use crate::status::{CommandResult, Status};

pub fn exec(ctx: &Context, args: &DistributeArgs) -> CommandResult {
    let mut session = commands::open(ctx)?;
    let facts = session.shared_facts();
    if args.status || args.dry_run {
        let progress = session.read(|tx| distribution::progress(tx, &facts))?;
        if args.dry_run {
            distribution::ensure_can_distribute(&progress)?;
            let statements = distribution::plan(&facts, &progress);
            match args.format {
                ReportFormat::Json => output::print_json(&serde_json::json!({
                    "dry_run": true,
                    "statements": statements,
                }))?,
                ReportFormat::Table => {
                    let text: Vec<String> = statements
                        .iter()
                        .map(|s| format!("{};", s.trim_end().trim_end_matches(';')))
                        .collect();
                    if !text.is_empty() {
                        output::print(text.join("\n\n"))?;
                    }
                }
            }
            ctx.console.say("Dry run: nothing was changed.");
            return Ok(Status::Ok);
        }
        show(ctx, &progress, args.format)?;
        // Monitoring may watch a conversion: half done is a WARNING, as a pending migration is.
        return Ok(if progress.steps_left().is_empty() {
            Status::Ok
        } else {
            Status::Warning
        });
    }
    let mut observer = Console { ctx };
    let done = distribution::distribute(&mut session, args.lock_timeout, &mut observer)?;
    show(ctx, &done, args.format)?;
    Ok(Status::Ok)
}

struct Console<'a> {
    ctx: &'a Context,
}

impl DistributeObserver for Console<'_> {
    fn step(&mut self, what: &str) {
        self.ctx.console.say(format!("distribute: {what}"));
    }
}

fn show(ctx: &Context, progress: &DistributionProgress, format: ReportFormat) -> CommandResult {
    let left = progress.steps_left();
    let summary = if left.is_empty() {
        format!(
            "processed_events and metrics are distributed by {} over {} worker(s), colocated",
            distribution::DISTRIBUTION_COLUMN,
            progress.workers
        )
    } else {
        format!(
            "not distributed yet; left to do: {} (run `metricsctl distribute`)",
            left.join(", ")
        )
    };
    match format {
        ReportFormat::Json => output::print_json(&serde_json::json!({
            "summary": summary,
            "steps_left": left,
            "progress": progress,
        }))?,
        ReportFormat::Table => {
            ctx.console.say(&summary);
            let mut table = output::table(["step", "state"]);
            let state = |done: bool| if done { "done" } else { "to do" }.to_string();
            table.add_row(vec![
                "metrics_pkey holds event_id".to_string(),
                state(progress.key_ready),
            ]);
            table.add_row(vec![
                "processed_events distributed".to_string(),
                state(progress.processed_events_distributed),
            ]);
            table.add_row(vec![
                "metrics distributed, colocated".to_string(),
                state(progress.metrics_distributed),
            ]);
            ctx.console.show(Status::Ok, table)?;
        }
    }
    Ok(Status::Ok)
}
