//! What the plugin host's unit tests share: limits for one call and a
//! gate's input for a small candidate.

use super::sandbox::Limits;
use super::{CALL_MEMORY_LIMIT, CandidateView, DEFAULT_FUEL, GateInput};
use crate::digest::Digest;
use std::sync::Arc;
use std::time::Duration;

/// Room enough for any test plugin's honest call.
pub fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(10),
        fuel: DEFAULT_FUEL,
        memory: CALL_MEMORY_LIMIT,
    }
}

/// A small candidate judged in dev with `params`.
pub fn input(params: serde_json::Value) -> GateInput {
    let bytes = br#"{"model":"m"}"#.to_vec();
    GateInput {
        candidate: CandidateView {
            digest: Digest::of(&bytes),
            bytes: Arc::new(bytes),
            metadata: Vec::new(),
        },
        incumbent: None,
        stage: "dev".into(),
        params,
        attachments: Arc::default(),
    }
}
