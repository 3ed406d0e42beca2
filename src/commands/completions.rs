//! `metricsctl completions <shell>`: a completion script on stdout.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::output;
use crate::status::{CommandResult, Status};

pub fn exec(args: &CompletionsArgs) -> CommandResult {
    let mut command = Cli::command();
    // Rendered first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "metricsctl", &mut script);
    output::print(String::from_utf8_lossy(&script).trim_end())?;
    Ok(Status::Ok)
}
