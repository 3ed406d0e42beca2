//! One module per command: each turns its arguments into a library call and prints the result.

pub mod check;
pub mod completions;
pub mod demo;
pub mod generate;
pub mod lag;
pub mod migrate;
pub mod partitions;
pub mod rate;
pub mod repair;
pub mod replay;

use crate::config::Context;
use crate::status::Failure;

/// Connects to the database the context names (a failure means the command could not run).
pub fn connect(ctx: &Context) -> Result<postgres::Client, Failure> {
    Ok(crate::db::connect(&ctx.target, ctx.connect_timeout)?)
}
