//! What the daemon tells about itself over time: DORA figures from the
//! audit log, the decisive audit events as log lines, `/metrics`, the
//! audit chain's periodic check, and notifications to receivers.

pub mod chain;
pub mod dora;
pub mod log;
pub mod metrics;
pub mod notify;
