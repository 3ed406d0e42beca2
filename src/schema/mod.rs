//! The schema's shape: the guide's migrations, the monthly partitions of metrics and the
//! distributed layout on Citus.

pub(crate) mod conversion;
pub mod distribution;
pub(crate) mod grants;
pub mod migrations;
pub(crate) mod partitions;
