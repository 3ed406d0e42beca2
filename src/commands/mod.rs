//! One module per command: each turns its arguments into a library call and prints the result.

pub mod completions;
pub mod demo;
pub mod generate;
pub mod migrate;
pub mod replay;
