//! `metricsctl rate`: events ingested per minute or hour.

use anyhow::anyhow;

use crate::checks::Check;
use crate::checks::rate::{self, RateOptions};
use crate::cli::RateArgs;
use crate::commands::report::Reporter;
use crate::config::Context;
use crate::status::{CommandResult, Failure};

pub fn exec(ctx: &Context, args: &RateArgs) -> CommandResult {
    if let (Some(warn), Some(crit)) = (args.warn_below, args.crit_below)
        && crit > warn
    {
        return Err(Failure::could_not_run(anyhow!(
            "--crit-below {crit} is above --warn-below {warn}: a rate that low would be CRITICAL \
             before it is WARNING; swap them"
        )));
    }
    let options = RateOptions {
        minutes: args.minutes,
        by: args.by,
        warn_below: args.warn_below,
        crit_below: args.crit_below,
    };
    Reporter::new(ctx, &args.output).run_check(Check::Rate, |tx, _| rate::run(tx, &options))
}
