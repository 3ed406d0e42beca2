//! metricsctl's integration tests: one binary, a `support` harness, one module per area.

mod support;

mod checks;
mod cli;
mod connection;
mod demo;
mod harness;
mod libpq_env;
mod limits;
mod migrate;
mod monitoring;
mod partitions;
mod partitions_online;
mod queries;
mod repair;
mod replay;
mod replay_corpus;
mod replay_faults;
mod replay_trust;
mod secrets;
