//! The one exit-code convention every command follows, taken from the monitoring world
//! (Nagios/Icinga plugins): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

use std::process::ExitCode;

pub use crate::checks::Status;

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        ExitCode::from(status.code())
    }
}

/// An error together with the exit status it should end the process with.
///
/// Errors default to CRITICAL (the work failed on the database); the places that know the
/// command could not run at all (connecting, arguments, missing schema) mark them UNKNOWN.
#[derive(Debug)]
pub struct Failure {
    pub status: Status,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn could_not_run(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            status: Status::Unknown,
            error: error.into(),
        }
    }

    /// A run its --timeout or a signal stopped could not finish: UNKNOWN, whatever failed then,
    /// and the message says first why it stopped and what it was waiting for.
    pub fn settled(self) -> Failure {
        let Some(stopped) = crate::db::interrupt::stopped() else {
            return self.with_statement_timeout_advice();
        };
        let reason = stopped.to_string();
        let cancelled = crate::error::postgres_error_in(&self.error)
            .is_some_and(|e| e.code() == Some(&postgres::error::SqlState::QUERY_CANCELED));
        let error = if format!("{:#}", self.error).contains(&reason) {
            self.error
        } else if cancelled {
            // The server's "canceling statement due to user request" says nothing more.
            anyhow::anyhow!(reason)
        } else {
            self.error.context(reason)
        };
        Failure {
            status: Status::Unknown,
            error,
        }
    }
}

impl Failure {
    /// A statement the session's own statement_timeout cancelled (not the run's --timeout): who
    /// set it and what to change, since metricsctl never raises it.
    fn with_statement_timeout_advice(self) -> Failure {
        let Some(error) = crate::error::postgres_error_in(&self.error) else {
            return self;
        };
        let advice = match crate::db::interrupt::session_timeout() {
            Some(timeout) => crate::db::statement_timeout_advice(error, &timeout),
            // Cancelled before the session's facts were read: the first statement.
            None => crate::db::statement_timeout_advice(
                error,
                &crate::db::facts::SessionTimeout::default(),
            ),
        };
        match advice {
            Some(advice) if !format!("{:#}", self.error).contains("never raises it") => Failure {
                status: Status::Unknown,
                error: self.error.context(advice),
            },
            _ => self,
        }
    }
}

/// What the library's kinds of trouble mean for a command, unless the command decides otherwise:
/// the work failed (CRITICAL) only where the database refused it or drifted; everything else
/// means the command could not run (UNKNOWN).
impl From<crate::error::Error> for Failure {
    fn from(error: crate::error::Error) -> Failure {
        use crate::error::What;
        let status = match error.what() {
            What::Database | What::Drift => Status::Critical,
            What::Unreachable
            | What::WrongSchema
            | What::LockTimeout
            | What::Refused
            | What::Privilege
            | What::Io
            | What::Interrupted => Status::Unknown,
        };
        Failure {
            status,
            error: error.into_inner(),
        }
    }
}

/// What every command returns: the status to exit with, or a failure to report.
pub type CommandResult = Result<Status, Failure>;

/// Marks any error as "could not run" (exit 3).
pub trait CouldNotRun<T> {
    fn could_not_run(self) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> CouldNotRun<T> for Result<T, E> {
    fn could_not_run(self) -> Result<T, Failure> {
        self.map_err(Failure::could_not_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_wins() {
        let worst = [Status::Ok, Status::Critical, Status::Warning]
            .into_iter()
            .max();
        assert_eq!(worst, Some(Status::Critical));
        assert!(Status::Unknown > Status::Critical);
    }

    #[test]
    fn codes_follow_the_nagios_convention() {
        let codes: Vec<u8> = [
            Status::Ok,
            Status::Warning,
            Status::Critical,
            Status::Unknown,
        ]
        .iter()
        .map(|s| s.code())
        .collect();
        assert_eq!(codes, vec![0, 1, 2, 3]);
    }

    #[test]
    fn the_domains_kinds_of_trouble_map_to_critical_only_where_the_work_failed() {
        use crate::error::{Error, What};
        let status_of = |what| Failure::from(Error::new(what, anyhow::anyhow!("x"))).status;
        assert_eq!(status_of(What::Database), Status::Critical);
        assert_eq!(status_of(What::Drift), Status::Critical);
        for what in [
            What::Unreachable,
            What::WrongSchema,
            What::LockTimeout,
            What::Refused,
            What::Privilege,
        ] {
            assert_eq!(status_of(what), Status::Unknown, "{what:?}");
        }
        let marked = Err::<(), _>(anyhow::anyhow!("no server"))
            .could_not_run()
            .unwrap_err();
        assert_eq!(marked.status, Status::Unknown);
    }
}
