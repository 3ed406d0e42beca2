//! How metricsctl talks to PostgreSQL: where the server is (target, TLS, password file), how it
//! connects and locks, the SQL it runs (compiled in from `queries/`), and the throwaway local
//! server the demo and the tests start.

pub mod connect;
pub(crate) mod pgpass;
pub mod queries;
pub mod sandbox;
pub mod target;
pub(crate) mod tls;

pub use connect::*;
