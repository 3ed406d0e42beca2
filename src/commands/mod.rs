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
