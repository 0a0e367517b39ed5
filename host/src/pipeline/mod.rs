//! Pipelines as code, the candidates that run down them, the release state
//! machine and the executor that drives each release one step at a time.

pub mod attachment;
pub mod candidate;
pub mod definition;
pub mod executor;
pub mod holds;
pub mod release;

pub use definition::{CanarySpec, Environment, GateSpec, Pipeline};
pub use release::{GateRecord, Phase, Release, ReleaseId, StageRecord};
