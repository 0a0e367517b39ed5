//! Gatehouse's side: the noop gate installed in a daemon's plugin host, and
//! one full call as the daemon makes it (fresh store, instantiation from the
//! `InstancePre`, `evaluate`, verdict checks, drop). Everything that touches
//! the host's API is here, so an API change is adapted in this file alone.

use std::sync::Arc;
use std::time::Duration;

use gatehouse::digest::Digest;
use gatehouse::pipeline::release::Outcome;
use gatehouse::plugins::manifest::Manifest;
use gatehouse::plugins::sandbox::Limits;
use gatehouse::plugins::{
    CALL_MEMORY_LIMIT, CandidateView, DEFAULT_FUEL, GateInput, Plugin, Plugins,
};

use crate::{CANDIDATE, REASON, STAGE};

/// The limits a pipeline gets by default.
const LIMITS: Limits = Limits {
    timeout: Duration::from_secs(5),
    fuel: DEFAULT_FUEL,
    memory: CALL_MEMORY_LIMIT,
};

/// The plugin host with the noop gate installed, and the request to send it.
pub struct Ours {
    plugins: Plugins,
    gate: Arc<Plugin>,
    input: GateInput,
}

impl Ours {
    /// Compiles and installs `wasm` (the noop gate) with an empty manifest.
    pub fn new(wasm: &[u8]) -> Ours {
        let plugins = Plugins::new().expect("the plugin host starts");
        let gate = plugins
            .install("noop-gate", wasm, Manifest::default())
            .expect("noop-gate installs");
        let input = GateInput {
            candidate: CandidateView {
                digest: Digest::of(CANDIDATE),
                bytes: Arc::new(CANDIDATE.to_vec()),
                metadata: Vec::new(),
            },
            incumbent: None,
            stage: STAGE.to_owned(),
            params: serde_json::json!({}),
            attachments: Default::default(),
        };
        let ours = Ours {
            plugins,
            gate,
            input,
        };
        ours.check();
        ours
    }

    /// One full call.
    pub fn call(&self) {
        let verdict = self
            .plugins
            .evaluate(&self.gate, &self.input, LIMITS)
            .expect("noop-gate answers");
        std::hint::black_box(verdict);
    }

    /// Panics unless the gate answers as the Extism guest does.
    fn check(&self) {
        let verdict = self
            .plugins
            .evaluate(&self.gate, &self.input, LIMITS)
            .expect("noop-gate answers");
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
        assert_eq!(verdict.reason, REASON, "{verdict:?}");
    }
}
