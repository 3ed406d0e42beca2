//! One module per command: each turns its arguments into a library call and prints the result.

pub mod check;
pub mod completions;
pub mod demo;
pub mod distribute;
pub mod generate;
pub mod grants;
pub mod lag;
pub mod man;
pub mod migrate;
pub mod partitions;
pub mod rate;
pub mod repair;
pub mod replay;
pub mod report;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Context;
use crate::db::{Session, interrupt};
use crate::status::Failure;

/// Opens a session with the database the context names (a failure means the command could not
/// run), and says once per run what the operator should hear about that database.
pub fn open(ctx: &Context) -> Result<Session, Failure> {
    let timeout = match interrupt::time_left() {
        Some(left) => ctx
            .connect_timeout
            .min(left.max(std::time::Duration::from_millis(1))),
        None => ctx.connect_timeout,
    };
    let session = Session::open(&ctx.target, timeout)?;
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        for warning in session.facts().warnings() {
            ctx.console.warn(warning);
        }
    }
    Ok(session)
}
