//! `metricsctl rate`: events ingested per minute or hour.

use crate::checks::rate::{self, RateOptions};
use crate::cli::RateArgs;
use crate::commands::check::run_check;
use crate::config::Context;
use crate::status::CommandResult;

pub fn exec(ctx: &Context, args: &RateArgs) -> CommandResult {
    let options = RateOptions {
        minutes: args.minutes,
        by: args.by,
        warn_below: args.warn_below,
        crit_below: args.crit_below,
    };
    run_check(ctx, "rate", &args.output, |client| {
        Ok(rate::run(client, &options)?)
    })
}
