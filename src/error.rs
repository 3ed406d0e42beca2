//! What went wrong, in the domain's words. The library says *what* happened; the commands decide
//! what exit status that is (`status::Failure`), so nothing below them knows about exit codes.

use std::fmt;
use std::io;

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
    /// A file or stream could not be read or written: an input, the rejects file, the report.
    Io,
    /// The run's --timeout or a signal stopped it before it was done.
    Interrupted,
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

    /// The PostgreSQL error underneath, if the trouble came from the server.
    pub fn source_postgres(&self) -> Option<&postgres::Error> {
        postgres_error_in(&self.error)
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
        Error::new(what, ServerSaid(error))
    }
}

/// A PostgreSQL error as one line: severity, SQLSTATE and the server's message (`ERROR 57014:
/// canceling statement due to statement timeout`), or that the connection was lost and why —
/// not the driver's "db error: ERROR: …".
#[derive(Debug)]
pub struct ServerSaid(pub postgres::Error);

impl fmt::Display for ServerSaid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe_session_error(&self.0))
    }
}

impl std::error::Error for ServerSaid {}

/// The PostgreSQL error somewhere in an error's chain.
pub fn postgres_error_in(error: &anyhow::Error) -> Option<&postgres::Error> {
    error.chain().find_map(|cause| {
        cause
            .downcast_ref::<ServerSaid>()
            .map(|said| &said.0)
            .or_else(|| cause.downcast_ref::<postgres::Error>())
    })
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

pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut chain = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain
}

pub(crate) fn find_io_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a io::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io_error) = e.downcast_ref::<io::Error>() {
            return Some(io_error);
        }
        current = e.source();
    }
    None
}

/// One line for an error during work on an open session: the server's severity, code and message,
/// or — when the session itself broke — that the connection was lost and the socket's reason
/// (the driver's own text, "error communicating with the server", names no cause).
pub fn describe_session_error(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    if error.is_closed() {
        return "the connection to PostgreSQL was lost".to_string();
    }
    match find_io_error(error) {
        Some(io_error) => format!("the connection to PostgreSQL was lost ({io_error})"),
        None => error_chain(error).join(": "),
    }
}
