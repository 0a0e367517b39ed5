//! What the daemon tells about itself over time: DORA figures from the
//! audit log, and the decisive audit events as log lines.

pub mod dora;
pub mod log;
pub mod metrics;
