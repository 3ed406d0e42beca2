//! metricsctl: the operator's CLI for the sensor-metrics PostgreSQL database.
//!
//! The binary is a thin wrapper around [`run`]; everything else lives here so tests can use it.

// The library's surface: `run` for the binary, and for the tests the command line (its help),
// the database layer, events and the insert path. The rest is the binary's own.
pub(crate) mod checks;
pub mod cli;
pub(crate) mod commands;
pub(crate) mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod ingest;
pub(crate) mod output;
pub mod schema;
pub(crate) mod status;
pub(crate) mod text;

/// The one list of checks, for the tests that walk every check's command.
pub use crate::checks::Check;

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
            let failure = failure.settled();
            report_error(&failure.error);
            failure.status.into()
        }
    }
}

/// Prints the error chain once on stderr. Text from the database or the input may be in it:
/// control characters are escaped, except the line breaks of our own multi-line messages.
fn report_error(error: &anyhow::Error) {
    let message = format!("{error:#}");
    let shown: Vec<String> = message
        .split('\n')
        .map(|line| output::escape_control(line).into_owned())
        .collect();
    eprintln!("error: {}", shown.join("\n"));
}

fn execute(cli: &Cli, env: &Environment) -> CommandResult {
    // Every command that connects is bounded and cancellable from the moment its settings are
    // resolved.
    let resolve = || {
        let ctx = Context::resolve(&cli.global, env, cli.command.default_timeout())?;
        db::interrupt::arm(ctx.time_limit);
        Ok::<Context, status::Failure>(ctx)
    };
    match &cli.command {
        Command::Migrate(migrate) => match &migrate.action {
            Some(MigrateAction::Status(args)) => commands::migrate::exec_status(&resolve()?, args),
            Some(MigrateAction::Repair(args)) => commands::migrate::exec_repair(&resolve()?, args),
            None => commands::migrate::exec(&resolve()?, &migrate.apply),
        },
        Command::Replay(args) => commands::replay::exec(&resolve()?, args),
        Command::Generate(args) => commands::generate::exec(args),
        Command::Check(cmd) => commands::check::exec(&resolve()?, cmd),
        Command::Partitions(cmd) => commands::partitions::exec(&resolve()?, cmd),
        Command::Lag(args) => commands::lag::exec(&resolve()?, args),
        Command::Rate(args) => commands::rate::exec(&resolve()?, args),
        Command::Repair(args) => commands::repair::exec(&resolve()?, args),
        Command::Grants(args) => commands::grants::exec(&resolve()?, args),
        Command::Distribute(args) => commands::distribute::exec(&resolve()?, args),
        Command::Demo(args) => commands::demo::exec(&resolve()?, args),
        Command::Completions(args) => commands::completions::exec(args),
        Command::Man => commands::man::exec(),
    }
}
