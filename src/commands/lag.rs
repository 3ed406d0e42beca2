//! `metricsctl lag`: how far behind ingestion is.

use crate::checks::lag::{self, LagOptions};
use crate::cli::LagArgs;
use crate::commands::check::run_check;
use crate::config::Context;
use crate::status::CommandResult;

pub fn exec(ctx: &Context, args: &LagArgs) -> CommandResult {
    let options = LagOptions {
        stale: args.stale,
        window: args.window,
        latency_sample: args.latency_sample,
        warn: args.warn,
        crit: args.crit,
        limit: args.output.limit,
    };
    run_check(ctx, "lag", &args.output, |client| {
        Ok(lag::run(client, &options)?)
    })
}
