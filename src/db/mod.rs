//! How metricsctl talks to PostgreSQL: where the server is (target, TLS, password file), how it
//! connects and locks, the session every command works through (typed unnamed statements,
//! transactions that pin their settings, the database's facts), bounding and cancelling a run,
//! the SQL it runs (compiled in from `queries/`), and the throwaway local server the demo and the
//! tests start.

pub mod citus_sandbox;
pub mod connect;
pub mod facts;
pub mod interrupt;
pub(crate) mod pgpass;
pub mod pooling;
pub mod queries;
pub mod sandbox;
pub mod session;
pub mod target;
pub(crate) mod tls;

pub use connect::*;
pub use facts::{Helper, Layout, SchemaFacts};
pub use session::{Param, Session, Tx};
