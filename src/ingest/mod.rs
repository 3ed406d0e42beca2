//! What goes into the two tables: the idempotent insert path for a batch, replaying event files
//! through it (with their rejects file), repairing what the checks find, and synthetic events.

pub mod batch;
pub(crate) mod generate;
pub(crate) mod rejects;
pub(crate) mod repair;
pub(crate) mod replay;

pub use batch::*;
