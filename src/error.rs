//! What went wrong, in the domain's words. The library says *what* happened; the commands decide
//! what exit status that is (`status::Failure`), so nothing below them knows about exit codes.

use std::fmt;

/// The kind of trouble, as far as anyone deciding what to do about it needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// PostgreSQL could not be reached, refused the login, or the session broke before the work
    /// began.
    Unreachable,
    /// The schema is not there, or not in the shape the operation needs.
    WrongSchema,
    /// A lock was not granted in time; nothing was changed.
    LockTimeout,
    /// The operation cannot be done as asked (an argument out of range, a state it does not
    /// handle); nothing was changed.
    Refused,
    /// The database's state contradicts this binary (migration drift).
    Drift,
    /// PostgreSQL failed or refused the work itself.
    Database,
    /// The current user lacks a privilege the work needs (the message names the GRANT).
    Privilege,
}

/// An error with what kind of trouble it is.
#[derive(Debug)]
pub struct Error {
    what: What,
    error: anyhow::Error,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(what: What, error: impl Into<anyhow::Error>) -> Error {
        Error {
            what,
            error: error.into(),
        }
    }

    pub fn what(&self) -> What {
        self.what
    }

    pub fn into_inner(self) -> anyhow::Error {
        self.error
    }

    /// Adds context, keeping the kind.
    pub fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Error {
        Error {
            what: self.what,
            error: self.error.context(context),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// The database refused or failed the work (or refused the current user a privilege).
impl From<postgres::Error> for Error {
    fn from(error: postgres::Error) -> Error {
        let what = if error.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
            What::Privilege
        } else {
            What::Database
        };
        Error::new(what, error)
    }
}

/// Adds context to a result's error, keeping its kind.
pub trait ResultExt<T> {
    fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Result<T>;
    fn with_context<C: fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context<C: fmt::Display + Send + Sync + 'static>(
        self,
        context: impl FnOnce() -> C,
    ) -> Result<T> {
        self.map_err(|e| e.into().context(context()))
    }
}
