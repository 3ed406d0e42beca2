//! metricsctl's integration tests: one binary, a `support` harness, one module per area.

mod support;

mod checks;
mod cli;
mod connection;
mod demo;
mod libpq_env;
mod limits;
mod migrate;
mod monitoring;
mod partitions;
mod queries;
mod replay;
mod replay_faults;
mod secrets;
