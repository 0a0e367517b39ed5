//! What the daemon tells about itself over time: DORA figures from the
//! audit log.

pub mod dora;
