//! Building requests for native unit tests of a plugin's logic.
//!
//! ```
//! use gatehouse_plugin_sdk::testing::{candidate, gate_request};
//!
//! let request = gate_request(r#"{"model": "m"}"#, r#"{"max": 3}"#).with_stage("production");
//! assert_eq!(request.candidate, candidate(r#"{"model": "m"}"#));
//! assert_eq!(request.stage, "production");
//! ```
//!
//! To run the same request through the built `.wasm` in the daemon's own
//! sandbox from a test, use [`wasm`]; from a shell,
//! `gatehouse plugin test PLUGIN.wasm --request FILE.json`
//! ([`GateRequest::to_request_file`] writes that file).

#[cfg(not(target_arch = "wasm32"))]
use crate::attachments::Owner;
use crate::{Candidate, GateRequest, Target};

/// Attaches `contents` as the file `name` of `owner`'s submission, for
/// [`crate::attachments`] and [`crate::data`] sources in native tests. Only
/// the calling thread sees it, so tests running in parallel do not mix.
#[cfg(not(target_arch = "wasm32"))]
pub fn attach(owner: Owner, name: &str, contents: impl Into<Vec<u8>>) {
    crate::attachments::native::set(owner, name, contents.into());
}

/// Removes every file [`attach`] attached on this thread.
#[cfg(not(target_arch = "wasm32"))]
pub fn clear_attachments() {
    crate::attachments::native::clear();
}

#[cfg(not(target_arch = "wasm32"))]
pub mod wasm;

/// Judges `request` as the exported gate does: parameters parsed and
/// checked into `G::Params` (an error names the parameter), then
/// `G::evaluate`.
pub fn evaluate<G: crate::Gate>(request: GateRequest) -> Result<crate::Verdict, String> {
    crate::evaluate_with_params::<G>(request)
}

/// A candidate holding `text`, named by a digest derived from it (not a
/// sha256 off WebAssembly; enough to tell candidates apart in tests).
pub fn candidate(text: &str) -> Candidate {
    Candidate {
        digest: test_digest(text.as_bytes()),
        bytes: text.as_bytes().to_vec(),
        metadata: Vec::new(),
    }
}

/// A request to judge `candidate_json` in "staging" with `params_json`, and
/// no incumbent.
pub fn gate_request(candidate_json: &str, params_json: &str) -> GateRequest {
    GateRequest {
        candidate: candidate(candidate_json),
        incumbent: None,
        stage: "staging".to_string(),
        params: params_json.to_string(),
    }
}

/// An adapter target: `environment` with `params_json`.
pub fn target(environment: &str, params_json: &str) -> Target {
    Target {
        environment: environment.to_string(),
        params: params_json.to_string(),
    }
}

impl GateRequest {
    /// The same request with `incumbent_json` live in the environment.
    pub fn with_incumbent(mut self, incumbent_json: &str) -> Self {
        self.incumbent = Some(candidate(incumbent_json));
        self
    }

    /// The same request for another stage.
    pub fn with_stage(mut self, stage: &str) -> Self {
        self.stage = stage.to_string();
        self
    }

    /// The request as the JSON file `gatehouse plugin test --request` reads:
    /// `{"candidate": {...}, "incumbent": {...}?, "stage": "...", "params": {...}}`.
    pub fn to_request_file(&self) -> Result<String, String> {
        let json_of = |c: &Candidate| {
            serde_json::from_slice::<serde_json::Value>(&c.bytes)
                .map_err(|e| format!("candidate is not JSON: {e}"))
        };
        let params: serde_json::Value = crate::parse_params(&self.params)?;
        let mut file = serde_json::json!({
            "candidate": json_of(&self.candidate)?,
            "stage": self.stage,
            "params": params,
        });
        if let Some(incumbent) = &self.incumbent {
            file["incumbent"] = json_of(incumbent)?;
        }
        Ok(serde_json::to_string_pretty(&file).unwrap_or_default())
    }
}

/// FNV-1a, four times with different seeds: 64 hex digits, stable, no
/// dependency.
fn test_digest(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    for seed in 0..4u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{hash:016x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_with_other_bytes_get_other_digests() {
        let a = candidate("{\"model\": \"a\"}");
        let b = candidate("{\"model\": \"b\"}");
        assert_eq!(a.digest.len(), 64);
        assert_ne!(a.digest, b.digest);
        assert_eq!(a, candidate("{\"model\": \"a\"}"));
    }

    #[test]
    fn request_file_round_trips_the_json() {
        let request = gate_request(r#"{"model": "m"}"#, r#"{"max": 3}"#)
            .with_incumbent(r#"{"model": "old"}"#);
        let file: serde_json::Value =
            serde_json::from_str(&request.to_request_file().expect("json")).expect("parses");
        assert_eq!(file["candidate"]["model"], "m");
        assert_eq!(file["incumbent"]["model"], "old");
        assert_eq!(file["params"]["max"], 3);
        assert_eq!(file["stage"], "staging");
    }
}
