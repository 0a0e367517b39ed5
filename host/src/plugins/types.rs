//! The plugin host's vocabulary: what a plugin is and says of itself, what
//! a call takes and gives back, and why a call fails. Everything a plugin
//! hands the host passes the checks here (limits, escaping) once, before the
//! store, the log or a response sees it.

use super::Attachments;
use super::capabilities::Grants;
use super::manifest::Manifest;
use super::sandbox::Callee;
use super::world::latest::gatehouse::plugin::types as wit;
use crate::digest::Digest;
use crate::verdict::{Measurement, Outcome};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Gate,
    Adapter,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Gate => "gate",
            PluginKind::Adapter => "adapter",
        }
    }
}

/// What a plugin says of itself through `describe()`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub summary: String,
    pub params_schema: String,
    pub capabilities: Vec<String>,
}

/// One version of a plugin, compiled, checked and ready to call.
pub struct Plugin {
    pub digest: Digest,
    pub description: Description,
    pub manifest: Manifest,
    pub grants: Arc<Grants>,
    pub(super) callee: Callee,
}

impl Plugin {
    /// The version of `gatehouse:plugin` it was built against.
    pub fn api_version(&self) -> &'static str {
        self.callee.api.version()
    }
}

/// A candidate as a plugin sees it.
#[derive(Debug, Clone)]
pub struct CandidateView {
    pub digest: Digest,
    pub bytes: Arc<Vec<u8>>,
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct GateInput {
    pub candidate: CandidateView,
    pub incumbent: Option<CandidateView>,
    pub stage: String,
    pub params: serde_json::Value,
    /// Files attached to the candidate's and the incumbent's submissions.
    pub attachments: Arc<Attachments>,
}

/// A verdict that passed the host's checks, with what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub score: f64,
    pub measurements: Vec<Measurement>,
    pub reason: String,
    /// Instructions the call used, as wasmtime's fuel counts them.
    pub fuel_used: u64,
}

/// What an adapter read back from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveState {
    pub active: Option<String>,
    pub canary: Option<String>,
    pub canary_weight_percent: u8,
    pub detail: String,
}

/// Why a plugin call produced no answer. Each fails the gate (or the
/// adapter's step) closed, with this text as the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateError {
    #[error(
        "is not installed; push it with `gatehouse plugin push` or remove it from the pipeline"
    )]
    NotInstalled { plugin: String },
    #[error("is an adapter, not a gate; use a gate plugin here")]
    WrongKind { plugin: String },
    #[error("is a gate, not an adapter; name an adapter plugin as the environment's adapter")]
    NotAnAdapter { plugin: String },
    #[error(
        "timed out after {limit_ms} ms; raise `timeout_ms` in the pipeline or make the plugin faster"
    )]
    Timeout { limit_ms: u64 },
    #[error(
        "ran out of fuel after {budget} instructions; raise `fuel` in the pipeline or make the plugin do less"
    )]
    FuelExhausted { budget: u64 },
    #[error(
        "ran out of memory (limit {limit_mib} MiB over all its memories); the plugin allocates too much"
    )]
    OutOfMemory { limit_mib: usize },
    #[error("overflowed its stack; the plugin recurses too deeply")]
    StackOverflow,
    #[error("trapped: {detail}")]
    Trap { detail: String },
    #[error("host call `{capability}` failed: {detail}")]
    HostCall { capability: String, detail: String },
    #[error("could not judge: {message}")]
    PluginError { message: String },
    #[error("failed: {message}")]
    AdapterFailed { message: String },
    #[error("returned a malformed verdict: {problem}")]
    MalformedVerdict { problem: String },
    #[error("returned a malformed answer: {problem}")]
    MalformedAnswer { problem: String },
    #[error("could not be started: {detail}")]
    Instantiate { detail: String },
    #[error(
        "could not start: all {slots} {} call slots are busy; retry once the calls in flight finish",
        kind.as_str()
    )]
    Busy { kind: PluginKind, slots: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{source_name}: not a loadable plugin component: {detail}; build it for wasm32-wasip2 against gatehouse-plugin-sdk"
    )]
    Compile { source_name: String, detail: String },
    #[error("{source_name}: not a Gatehouse plugin: {detail}")]
    WrongWorld { source_name: String, detail: String },
    #[error("{source_name}: describe() failed: {reason}")]
    Describe {
        source_name: String,
        reason: GateError,
    },
    #[error("{source_name}: {detail}")]
    Refused { source_name: String, detail: String },
    #[error(
        "{source_name}: the host could not prepare its memory image ({detail}); the plugin is fine, retry"
    )]
    Image { source_name: String, detail: String },
    #[error("the WebAssembly engine could not be set up: {0}")]
    Engine(String),
}

/// One call of the adapter world.
#[derive(Debug, Clone)]
pub enum AdapterCall {
    Apply {
        environment: String,
        params: serde_json::Value,
        candidate: CandidateView,
    },
    Current {
        environment: String,
        params: serde_json::Value,
    },
    SetTraffic {
        environment: String,
        params: serde_json::Value,
        canary: CandidateView,
        weight_percent: u8,
    },
    Rollback {
        environment: String,
        params: serde_json::Value,
        restore: Option<CandidateView>,
    },
}

impl AdapterCall {
    /// The adapter function called, as the WIT names it.
    pub fn name(&self) -> &'static str {
        match self {
            AdapterCall::Apply { .. } => "apply",
            AdapterCall::Current { .. } => "current",
            AdapterCall::SetTraffic { .. } => "set-traffic",
            AdapterCall::Rollback { .. } => "rollback",
        }
    }

    /// The environment the call acts on.
    pub fn environment(&self) -> &str {
        match self {
            AdapterCall::Apply { environment, .. }
            | AdapterCall::Current { environment, .. }
            | AdapterCall::SetTraffic { environment, .. }
            | AdapterCall::Rollback { environment, .. } => environment,
        }
    }
}

impl GateError {
    /// The kind of failure, for a bounded metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            GateError::NotInstalled { .. } => "not_installed",
            GateError::WrongKind { .. } | GateError::NotAnAdapter { .. } => "wrong_kind",
            GateError::Timeout { .. } => "timeout",
            GateError::FuelExhausted { .. } => "fuel_exhausted",
            GateError::OutOfMemory { .. } => "out_of_memory",
            GateError::StackOverflow => "stack_overflow",
            GateError::Trap { .. } => "trap",
            GateError::HostCall { .. } => "host_call",
            GateError::PluginError { .. } => "plugin_error",
            GateError::AdapterFailed { .. } => "adapter_failed",
            GateError::MalformedVerdict { .. } => "malformed_verdict",
            GateError::MalformedAnswer { .. } => "malformed_answer",
            GateError::Instantiate { .. } => "instantiate",
            GateError::Busy { .. } => "busy",
        }
    }
}

/// Limits on what `describe()` may say, checked before the host keeps any
/// of it (see the WIT's `description`).
pub const MAX_NAME_BYTES: usize = 64;
pub const MAX_VERSION_BYTES: usize = 64;
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
pub const MAX_CAPABILITIES: usize = 16;

impl Description {
    /// What a plugin's `describe()` said, within the limits: a summary over
    /// [`MAX_TEXT_BYTES`] is clipped, anything else out of bounds refused.
    pub(super) fn checked(d: wit::Description) -> Result<Description, String> {
        let over = |what: &str, len: usize, max: usize| {
            format!("describe() gives a {what} of {len} bytes; at most {max} are allowed")
        };
        if d.name.len() > MAX_NAME_BYTES {
            return Err(over("name", d.name.len(), MAX_NAME_BYTES));
        }
        if d.version.len() > MAX_VERSION_BYTES {
            return Err(over("version", d.version.len(), MAX_VERSION_BYTES));
        }
        if d.params_schema.len() > MAX_SCHEMA_BYTES {
            return Err(over(
                "params schema",
                d.params_schema.len(),
                MAX_SCHEMA_BYTES,
            ));
        }
        if d.name
            .chars()
            .chain(d.version.chars())
            .any(char::is_control)
        {
            return Err(format!(
                "describe() gives a name or version with control characters ({:?} {:?})",
                clip_to(d.name, MAX_NAME_BYTES),
                clip_to(d.version, MAX_VERSION_BYTES)
            ));
        }
        if d.capabilities.len() > MAX_CAPABILITIES
            || d.capabilities.iter().any(|c| c.len() > MAX_NAME_BYTES)
        {
            return Err(format!(
                "describe() asks for {} capabilities; at most {MAX_CAPABILITIES} known names are allowed",
                d.capabilities.len()
            ));
        }
        Ok(Description {
            name: d.name,
            version: d.version,
            kind: match d.kind {
                wit::PluginKind::Gate => PluginKind::Gate,
                wit::PluginKind::Adapter => PluginKind::Adapter,
            },
            summary: plugin_text(d.summary),
            params_schema: d.params_schema,
            capabilities: d.capabilities,
        })
    }
}

impl LiveState {
    /// What an adapter's `current()` read back, within the limits: each
    /// digest is a digest, the detail is clipped.
    pub(super) fn checked(s: wit::LiveState) -> Result<LiveState, String> {
        let digest = |arm: &str, d: Option<String>| -> Result<Option<String>, String> {
            let Some(d) = d else { return Ok(None) };
            let bare = d.trim();
            let bare = bare.strip_prefix("sha256:").unwrap_or(bare);
            match bare.parse::<Digest>() {
                Ok(parsed) => Ok(Some(parsed.hex())),
                Err(_) => Err(format!(
                    "current() gives as the {arm} digest {:?} ({} bytes), not 64 hex characters",
                    clip_to(escape_controls(&d), 80),
                    d.len()
                )),
            }
        };
        Ok(LiveState {
            active: digest("active", s.active)?,
            canary: digest("canary", s.canary)?,
            canary_weight_percent: s.canary_weight_percent.min(100),
            detail: plugin_text(s.detail),
        })
    }
}

/// Limit on any text a plugin hands the host for the record.
pub(super) const MAX_TEXT_BYTES: usize = 4096;

/// Text a plugin supplies, as the host keeps and shows it: at most
/// [`MAX_TEXT_BYTES`], with control characters escaped. Every reason,
/// message, summary and detail from a plugin passes through here.
pub(super) fn plugin_text(s: String) -> String {
    clip_to(escape_controls(&clip_to(s, MAX_TEXT_BYTES)), MAX_TEXT_BYTES)
}

/// `s` with every control character written as an escape (`\n`, `\u{1b}`),
/// so text a plugin supplies stays on its own line of the daemon's log and
/// of a terminal, and cannot forge a line or move the cursor.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Truncates `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn clip_to(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod escape_tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_escaped_and_other_text_is_kept() {
        assert_eq!(
            escape_controls(
                "ok\n2026-12-02T05:00:00Z INFO gatehouse::pipeline: release 1 approved"
            ),
            "ok\\n2026-12-02T05:00:00Z INFO gatehouse::pipeline: release 1 approved"
        );
        assert_eq!(
            escape_controls("\u{1b}[2Jcleared\r"),
            "\\u{1b}[2Jcleared\\r"
        );
        assert_eq!(
            escape_controls("naïve café — 東京 😀"),
            "naïve café — 東京 😀"
        );
    }
}
