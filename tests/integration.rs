//! metricsctl's integration tests: one binary, a `support` harness, one module per area.

// The tests set up and inspect databases with plain rust-postgres calls, on connections of their
// own; clippy.toml's ban on named prepared statements is for metricsctl's own sessions.
#![allow(clippy::disallowed_methods)]

mod support;

mod bounded;
mod checks;
mod cli;
mod client_certificates;
mod connection;
mod demo;
mod distributed;
mod docs;
mod field;
mod harness;
mod libpq_env;
mod limits;
mod migrate;
mod monitoring;
mod partitions;
mod partitions_online;
mod pooling;
mod privileges;
mod queries;
mod repair;
mod replay;
mod replay_corpus;
mod replay_faults;
mod replay_trust;
mod secrets;
mod shared_database;
mod terminal;
