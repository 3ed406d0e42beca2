//! metricsctl: the operator's CLI for the sensor-metrics PostgreSQL database.
//!
//! The binary is a thin wrapper around [`run`]; everything else lives here so tests can use it.

pub mod checks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod events;
pub mod generate;
pub mod ingest;
pub mod migrations;
pub mod output;
pub mod partitions;
pub mod pgpass;
pub mod queries;
pub mod replay;
pub mod sandbox;
pub mod status;
pub mod target;
pub mod tls;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, MigrateAction};
use crate::config::{Context, Environment};
use crate::status::{CommandResult, Status};

/// Parses the arguments, runs the command, prints any error once, and returns the exit code
/// (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // clap would exit 2 on a usage error; in our convention that is "could not run".
            let status = if error.use_stderr() {
                Status::Unknown
            } else {
                Status::Ok
            };
            return status.into();
        }
    };
    match execute(&cli, &Environment::from_process()) {
        Ok(status) => status.into(),
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            failure.status.into()
        }
    }
}

fn execute(cli: &Cli, env: &Environment) -> CommandResult {
    let resolve = |connect| Context::resolve(connect, &cli.global, env);
    match &cli.command {
        Command::Migrate(migrate) => match &migrate.action {
            Some(MigrateAction::Status(args)) => {
                commands::migrate::exec_status(&resolve(&args.connect)?, args)
            }
            None => commands::migrate::exec(&resolve(&migrate.apply.connect)?, &migrate.apply),
        },
        Command::Replay(args) => commands::replay::exec(&resolve(&args.connect)?, args),
        Command::Generate(args) => commands::generate::exec(args),
        Command::Check(cmd) => commands::check::exec(cmd, &cli.global, env),
        Command::Partitions(cmd) => commands::partitions::exec(cmd, &cli.global, env),
        Command::Lag(args) => commands::lag::exec(&resolve(&args.connect)?, args),
        Command::Rate(args) => commands::rate::exec(&resolve(&args.connect)?, args),
        Command::Demo(args) => commands::demo::exec(&resolve(&args.connect)?, args),
        Command::Completions(args) => commands::completions::exec(args),
    }
}
