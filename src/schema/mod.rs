//! The schema's shape: the guide's migrations and the monthly partitions of metrics.

pub(crate) mod conversion;
pub(crate) mod grants;
pub mod migrations;
pub(crate) mod partitions;
