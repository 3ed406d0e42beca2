//! `metricsctl lag`: how far behind ingestion is.

use anyhow::anyhow;

use crate::checks::Check;
use crate::checks::lag::{self, LagOptions};
use crate::cli::LagArgs;
use crate::commands::report::Reporter;
use crate::config::Context;
use crate::status::{CommandResult, Failure};

pub fn exec(ctx: &Context, args: &LagArgs) -> CommandResult {
    if args.warn > args.crit {
        return Err(Failure::could_not_run(anyhow!(
            "--warn {} is above --crit {}: WARNING must come before CRITICAL; swap them",
            humantime::format_duration(args.warn),
            humantime::format_duration(args.crit)
        )));
    }
    let options = LagOptions {
        stale: args.stale,
        window: args.window,
        latency_sample: args.latency_sample,
        warn: args.warn,
        crit: args.crit,
        clock_tolerance: args.clock_tolerance,
        limit: args.limit.limit,
    };
    Reporter::new(ctx, &args.output)
        .run_check(Check::Lag, |tx, facts| lag::run(tx, facts, &options))
}
