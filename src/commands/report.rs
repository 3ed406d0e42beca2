//! The one way a report reaches its reader, for every command that makes one (check, lag, rate,
//! migrate status, repair's closing check, the demo): how it is rendered (`--format`), where it
//! goes (`--output`), what `--quiet` leaves out, and what monitoring sees when it could not be made.
//! Resolved once per command into a [`Reporter`].

use std::cell::Cell;

use crate::checks::{Check, CheckReport, Subject};
use crate::cli::CheckOutputArgs;
use crate::commands;
use crate::config::Context;
use crate::db::{Layout, SchemaFacts, Session, Tx};
use crate::error;
use crate::output::{self, CheckFormat, Destination};
use crate::status::{CommandResult, CouldNotRun, Failure, Status};

/// How and where one command's report goes.
pub struct Reporter<'a> {
    ctx: &'a Context,
    format: CheckFormat,
    destination: Destination,
}

impl<'a> Reporter<'a> {
    /// As the command's `--format` and `--output` say.
    pub fn new(ctx: &'a Context, output: &CheckOutputArgs) -> Reporter<'a> {
        Reporter {
            ctx,
            format: output.format,
            destination: Destination::from_flag(output.output.as_ref()),
        }
    }

    /// A table for people on stdout (the demo's steps, repair's closing checks).
    pub fn table(ctx: &'a Context) -> Reporter<'a> {
        Reporter {
            ctx,
            format: CheckFormat::Table,
            destination: Destination::Stdout,
        }
    }

    /// Shows a report; its status is the outcome.
    pub fn show<R: CheckReport>(&self, report: &R) -> CommandResult {
        let status = report.status();
        let text = output::render_check(report, self.format).could_not_run()?;
        self.deliver(status, &text)?;
        Ok(status)
    }

    /// Runs one check in a read-only snapshot, once the current user is known to may read what
    /// it reads, and delivers its report (see [`Reporter::run`]).
    pub fn run_check<R: CheckReport>(
        &self,
        check: Check,
        run: impl FnOnce(&mut Tx<'_>, &SchemaFacts) -> error::Result<R>,
    ) -> CommandResult {
        self.run(Subject::One(check), true, |session| {
            check.ensure_privileges(session.facts())?;
            let facts = session.shared_facts();
            session.read(|tx| run(tx, &facts))
        })
    }

    /// Connects, checks the schema is there (unless `needs_schema` is false: `migrate status`),
    /// runs a report and delivers it; the exit status is the report's. A report that cannot run
    /// — unreachable server, missing schema, a privilege lacking, SQL the database refuses, the
    /// run's --timeout — is UNKNOWN (nothing was judged), and still answers in the monitoring
    /// format asked for, with every series the report has (those of the layout found).
    pub fn run<R: CheckReport>(
        &self,
        subject: Subject,
        needs_schema: bool,
        report: impl FnOnce(&mut Session) -> error::Result<R>,
    ) -> CommandResult {
        let layout: Cell<Option<Layout>> = Cell::new(None);
        let outcome = (|| -> Result<R, Failure> {
            let mut session = commands::open(self.ctx)?;
            layout.set(session.facts().layout());
            if needs_schema {
                session.facts().require_tables()?;
            }
            Ok(report(&mut session)?)
        })();
        match outcome {
            Ok(report) => self.show(&report),
            Err(failure) => Err(self.could_not_run(subject, layout.get(), failure)),
        }
    }

    /// A report that could not be made: the error for people on stderr, and for monitoring the
    /// status line of its format on stdout or in `--output`.
    fn could_not_run(&self, subject: Subject, layout: Option<Layout>, failure: Failure) -> Failure {
        let failure = Failure {
            status: Status::Unknown,
            error: failure.error,
        }
        .settled();
        let for_people = matches!(self.format, CheckFormat::Table | CheckFormat::Csv);
        if for_people && self.destination == Destination::Stdout {
            // People read the error on stderr; stdout stays empty.
            return failure;
        }
        let text = output::render_check_failure(subject, layout, self.format, &failure);
        match self.deliver(failure.status, &text) {
            Ok(()) => failure,
            Err(lost) => Failure::could_not_run(failure.error.context(format!("{:#}", lost.error))),
        }
    }

    /// Writes a report where it goes. Under `--quiet`, a table that says all is well is not
    /// printed (a successful cron run prints nothing); formats asked for are always written.
    fn deliver(&self, status: Status, text: &str) -> Result<(), Failure> {
        if self.ctx.console.quiet
            && status == Status::Ok
            && self.format == CheckFormat::Table
            && self.destination == Destination::Stdout
        {
            return Ok(());
        }
        self.destination.deliver(text).could_not_run()
    }
}
