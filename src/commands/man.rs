//! `metricsctl man`: the manual page, rendered from the clap definitions `--help` reads (as
//! `rg --generate man` does), so each flag is described in one place. One page: the program, its
//! global options, then a section per command with its synopsis, description and options.

use clap::CommandFactory;
use clap_mangen::Man;

use crate::cli::Cli;
use crate::output;
use crate::status::{CommandResult, CouldNotRun, Status};

pub fn exec() -> CommandResult {
    let page = render().could_not_run()?;
    output::print(page.trim_end())?;
    Ok(Status::Ok)
}

/// The whole page, as roff.
pub fn render() -> std::io::Result<String> {
    let mut command = Cli::command();
    command.build();
    let man = Man::new(command.clone()).manual("metricsctl manual");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    // No SUBCOMMANDS list pointing at pages of their own: each command's section follows.
    for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
        render_command(&mut page, "metricsctl", sub)?;
    }
    page.extend_from_slice(exit_status_section().as_bytes());
    page.extend_from_slice(
        retitled(section_text(|w| man.render_extra_section(w))?, ".SH").as_bytes(),
    );
    man.render_version_section(&mut page)?;
    Ok(String::from_utf8_lossy(&page).into_owned())
}

/// A command's own section (`metricsctl check duplicates`), then its subcommands'.
fn render_command(
    page: &mut Vec<u8>,
    parent: &str,
    command: &clap::Command,
) -> std::io::Result<()> {
    let path = format!("{parent} {}", command.get_name());
    // The global options are described once, at the top: hidden here.
    let mut own = command
        .clone()
        .display_name(path.clone())
        .bin_name(path.clone());
    let shared: Vec<clap::Id> = command
        .get_arguments()
        .filter(|arg| arg.is_global_set() || matches!(arg.get_id().as_str(), "help" | "version"))
        .map(|arg| arg.get_id().clone())
        .collect();
    for id in shared {
        own = own.mut_arg(id, |arg| arg.hide(true));
    }
    let man = Man::new(own);
    page.extend_from_slice(format!(".SH \"{}\"\n", path.to_uppercase()).as_bytes());
    for part in [
        section(|w| man.render_synopsis_section(w))?,
        section(|w| man.render_description_section(w))?,
        section(|w| man.render_options_section(w))?,
        section(|w| man.render_extra_section(w))?,
    ] {
        page.extend_from_slice(part.as_bytes());
    }
    for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
        render_command(page, &path, sub)?;
    }
    Ok(())
}

/// One of clap_mangen's sections, demoted to a subsection of the command's section.
fn section(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> std::io::Result<String> {
    Ok(retitled(section_text(render)?, ".SS"))
}

fn section_text(
    render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<String> {
    let mut text = Vec::new();
    render(&mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// A section under `macro` (.SH or .SS). clap_mangen calls the text after the options EXTRA;
/// here it is the command's EXAMPLES when that is what it holds, NOTES otherwise.
fn retitled(text: String, heading_macro: &str) -> String {
    let title = if text.contains("\nExamples:\n") && !text.contains("\nExit codes") {
        "EXAMPLES"
    } else {
        "NOTES"
    };
    text.lines()
        .map(|line| match line.strip_prefix(".SH ") {
            Some("EXTRA") => format!("{heading_macro} {title}"),
            Some(other) => format!("{heading_macro} {other}"),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The one exit-code convention, from the statuses themselves.
fn exit_status_section() -> String {
    let mut text =
        String::from(".SH \"EXIT STATUS\"\nEvery command, the Nagios plugin convention:\n");
    for (status, meaning) in [
        (
            Status::Ok,
            "all is well, or the command did what it was asked",
        ),
        (
            Status::Warning,
            "something needs attention (a pending migration, a stale sensor, rejected lines)",
        ),
        (
            Status::Critical,
            "a check found a problem, or an operation failed on the database",
        ),
        (
            Status::Unknown,
            "could not run: bad arguments, unreachable database, timed out, interrupted",
        ),
    ] {
        text.push_str(&format!(
            ".TP\n{}\n{}: {meaning}\n",
            status.code(),
            status.label()
        ));
    }
    text
}
