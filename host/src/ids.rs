//! Names shared by every layer: a release's id, its phase's name, and who
//! the audit log names when the daemon acts on its own. Leaf types: this
//! module imports nothing from the crate, so the store below and the API
//! above can both speak of a release without knowing what one holds.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who the log names as the actor of what the daemon does by itself.
pub const DAEMON: &str = "daemon";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReleaseId(pub u64);

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A phase without its data, for events and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseName {
    Pending,
    Gating,
    AwaitingApproval,
    Applying,
    Canary,
    Promoted,
    Succeeded,
    Failed,
    RolledBack,
    Aborted,
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            PhaseName::Pending => "Pending",
            PhaseName::Gating => "Gating",
            PhaseName::AwaitingApproval => "AwaitingApproval",
            PhaseName::Applying => "Applying",
            PhaseName::Canary => "Canary",
            PhaseName::Promoted => "Promoted",
            PhaseName::Succeeded => "Succeeded",
            PhaseName::Failed => "Failed",
            PhaseName::RolledBack => "RolledBack",
            PhaseName::Aborted => "Aborted",
        };
        f.write_str(s)
    }
}
