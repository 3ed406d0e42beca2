//! `metricsctl completions <shell>`: a completion script on stdout.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::status::{CommandResult, Status};

pub fn exec(args: &CompletionsArgs) -> CommandResult {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "metricsctl",
        &mut std::io::stdout(),
    );
    Ok(Status::Ok)
}
