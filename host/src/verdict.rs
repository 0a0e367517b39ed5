//! What a gate says of a candidate: its outcome, its measurements, and the
//! record of one gate's verdict kept on the release. Leaf types shared by
//! the plugins that produce verdicts and the releases that keep them.

use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
    Inconclusive,
}

impl Outcome {
    /// Gates fail closed: only pass and warn let a blocking gate through.
    pub fn lets_through(self) -> bool {
        matches!(self, Outcome::Pass | Outcome::Warn)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

/// One gate's verdict on the candidate, with the plugin version that gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    pub gate: String,
    pub plugin: String,
    pub plugin_digest: Option<Digest>,
    pub outcome: Outcome,
    pub score: f64,
    pub measurements: Vec<Measurement>,
    pub reason: String,
    pub blocking: bool,
    pub duration_us: u64,
    /// Instructions the evaluation used; none when it produced no verdict.
    #[serde(default)]
    pub fuel_used: Option<u64>,
    /// Why the call gave no verdict, as a short kind (`timeout`,
    /// `fuel_exhausted`, `trap`, `malformed_verdict`, ...); none for a
    /// verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}
