//! A release: one candidate on its way down one pipeline, and the state
//! machine it follows.
//!
//! ```text
//! Pending → Gating(i) → [AwaitingApproval(i)] → Applying(i) → [Canary(i, step 0…n)] → Promoted(i)
//!         → Gating(i+1) … → Succeeded
//! any non-terminal phase → Failed | RolledBack | Aborted
//! ```
//! Every phase is persisted before the effect it guards runs (gates run in
//! `Gating`, the adapter applies in `Applying`, a canary step is placed with
//! its `Canary` phase), so a daemon that dies resumes each release from its
//! last phase and repeats at most an idempotent effect. A stage with a
//! canary enters `Canary` only when something is live to compare against;
//! `Promoted` may hold a watch after full promotion (see the executor).

pub mod machine;
mod storage;

use super::attachment::AttachmentRef;
use super::definition::{CanarySpec, Pipeline};
use crate::canary::ArmSummary;
use crate::digest::Digest;
pub use crate::ids::{PhaseName, ReleaseId};
pub use crate::verdict::{GateRecord, Measurement, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
pub use storage::{OPEN_RELEASES, RELEASES, ReleaseReads, ReleaseWrites};

/// Where a release stands. `stage` indexes the pipeline's environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    Pending,
    Gating {
        stage: usize,
    },
    AwaitingApproval {
        stage: usize,
    },
    Applying {
        stage: usize,
    },
    Canary {
        stage: usize,
        /// Index into the stage's canary steps (absent in older records: 0).
        #[serde(default)]
        step: usize,
        /// Extra step durations observed because a final look could not decide.
        #[serde(default)]
        extensions: u32,
        #[serde(default)]
        hold: CanaryHold,
    },
    Promoted {
        stage: usize,
    },
    Succeeded,
    Failed {
        stage: Option<usize>,
        gate: Option<String>,
        reason: String,
        /// The pipeline was wrong, not the candidate: a plugin refused its
        /// parameters or is not installed (absent in older records: false).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        misconfigured: bool,
    },
    RolledBack {
        stage: Option<usize>,
        reason: String,
    },
    Aborted {
        stage: Option<usize>,
        reason: String,
    },
}

impl Phase {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Phase::Succeeded
                | Phase::Failed { .. }
                | Phase::RolledBack { .. }
                | Phase::Aborted { .. }
        )
    }

    /// The stage this phase is at, if any.
    pub fn stage(&self) -> Option<usize> {
        match self {
            Phase::Pending | Phase::Succeeded => None,
            Phase::Gating { stage }
            | Phase::AwaitingApproval { stage }
            | Phase::Applying { stage }
            | Phase::Canary { stage, .. }
            | Phase::Promoted { stage } => Some(*stage),
            Phase::Failed { stage, .. }
            | Phase::RolledBack { stage, .. }
            | Phase::Aborted { stage, .. } => *stage,
        }
    }

    pub fn name(&self) -> PhaseName {
        match self {
            Phase::Pending => PhaseName::Pending,
            Phase::Gating { .. } => PhaseName::Gating,
            Phase::AwaitingApproval { .. } => PhaseName::AwaitingApproval,
            Phase::Applying { .. } => PhaseName::Applying,
            Phase::Canary { .. } => PhaseName::Canary,
            Phase::Promoted { .. } => PhaseName::Promoted,
            Phase::Succeeded => PhaseName::Succeeded,
            Phase::Failed { .. } => PhaseName::Failed,
            Phase::RolledBack { .. } => PhaseName::RolledBack,
            Phase::Aborted { .. } => PhaseName::Aborted,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Phase::Failed { reason, .. }
            | Phase::RolledBack { reason, .. }
            | Phase::Aborted { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// Whether a canary step is observing or held for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryHold {
    /// Traffic flows and the step ends with a final look when its time is up.
    #[default]
    Observing,
    /// The final look could not decide and the pipeline says pause: traffic
    /// still flows and a regression still rolls back, but only an operator's
    /// approval promotes the step.
    Paused,
    /// An operator approved the paused step; the executor promotes it.
    Approved,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StageRecord {
    pub environment: String,
    /// Verdicts of the latest evaluation of this stage's gates.
    pub gates: Vec<GateRecord>,
    pub approved_by: Vec<String>,
    pub promoted: bool,
    /// What the baseline served during the last canary step, kept to judge
    /// the promoted candidate against during the watch after promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_baseline: Option<ArmSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub id: ReleaseId,
    /// The pipeline as it was when the release was submitted.
    pub pipeline: Pipeline,
    pub candidate: Digest,
    pub metadata: BTreeMap<String, String>,
    /// Files attached to the submission, for gates to read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
    pub phase: Phase,
    /// While the release waits its turn for its environment: for what, and
    /// its place in line (see `pipeline::holds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    pub stages: Vec<StageRecord>,
    pub submitted_by: String,
    pub submitted_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Release {
    pub fn new(
        id: ReleaseId,
        pipeline: Pipeline,
        candidate: Digest,
        metadata: BTreeMap<String, String>,
        submitted_by: String,
        now_ms: i64,
    ) -> Release {
        let stages = pipeline
            .environments
            .iter()
            .map(|e| StageRecord {
                environment: e.name.clone(),
                ..StageRecord::default()
            })
            .collect();
        Release {
            id,
            pipeline,
            candidate,
            metadata,
            attachments: Vec::new(),
            phase: Phase::Pending,
            waiting: None,
            stages,
            submitted_by,
            submitted_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }

    /// Name of the environment at `stage`.
    pub fn environment(&self, stage: usize) -> &str {
        self.pipeline
            .environments
            .get(stage)
            .map_or("?", |e| e.name.as_str())
    }

    /// The canary settings of the environment at `stage`, if it has any.
    pub fn canary_spec(&self, stage: usize) -> Option<&CanarySpec> {
        self.pipeline
            .environments
            .get(stage)
            .and_then(|e| e.canary.as_ref())
    }

    /// The environment the current phase refers to, if any.
    pub fn current_environment(&self) -> Option<&str> {
        self.phase.stage().map(|s| self.environment(s))
    }

    /// The phase after the gates of `stage` passed: wait for approvals the
    /// environment requires, else apply.
    pub fn after_gates(&self, stage: usize) -> Phase {
        let required = self.pipeline.environments[stage].approvals as usize;
        if self.stages[stage].approved_by.len() >= required {
            Phase::Applying { stage }
        } else {
            Phase::AwaitingApproval { stage }
        }
    }

    /// The phase after `stage` was promoted: the next stage's gates, or done.
    pub fn after_promotion(&self, stage: usize) -> Phase {
        if stage + 1 < self.pipeline.environments.len() {
            Phase::Gating { stage: stage + 1 }
        } else {
            Phase::Succeeded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::definition::tests::fixed_catalog;

    fn release(approvals: u32) -> Release {
        let text = format!(
            "name = \"p\"\n[[environment]]\nname = \"dev\"\n[[environment]]\nname = \"prod\"\napprovals = {approvals}\n"
        );
        let p = Pipeline::parse("p.toml", &text, &fixed_catalog()).unwrap();
        Release::new(
            ReleaseId(1),
            p,
            Digest::of(b"x"),
            BTreeMap::new(),
            "ci".into(),
            0,
        )
    }

    #[test]
    fn promotion_walks_the_stages_in_order_then_succeeds() {
        let r = release(0);
        assert_eq!(r.after_promotion(0), Phase::Gating { stage: 1 });
        assert_eq!(r.after_promotion(1), Phase::Succeeded);
    }

    #[test]
    fn stage_requiring_approval_waits_until_enough_distinct_approvers() {
        let mut r = release(2);
        assert_eq!(r.after_gates(0), Phase::Applying { stage: 0 });
        assert_eq!(r.after_gates(1), Phase::AwaitingApproval { stage: 1 });
        r.stages[1].approved_by.push("alice".into());
        assert_eq!(r.after_gates(1), Phase::AwaitingApproval { stage: 1 });
        r.stages[1].approved_by.push("bob".into());
        assert_eq!(r.after_gates(1), Phase::Applying { stage: 1 });
    }

    #[test]
    fn only_pass_and_warn_let_a_gate_through() {
        assert!(Outcome::Pass.lets_through());
        assert!(Outcome::Warn.lets_through());
        assert!(!Outcome::Fail.lets_through());
        assert!(!Outcome::Inconclusive.lets_through());
    }

    #[test]
    fn phase_round_trips_through_json_as_stored() {
        for p in [
            Phase::Pending,
            Phase::Gating { stage: 2 },
            Phase::Failed {
                stage: Some(1),
                gate: Some("cost".into()),
                reason: "too dear".into(),
                misconfigured: false,
            },
            Phase::Succeeded,
            Phase::Canary {
                stage: 1,
                step: 2,
                extensions: 1,
                hold: CanaryHold::Paused,
            },
        ] {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Phase>(&json).unwrap(), p);
        }
        assert!(
            Phase::Aborted {
                stage: None,
                reason: String::new()
            }
            .is_terminal()
        );
        assert!(!Phase::AwaitingApproval { stage: 0 }.is_terminal());
    }

    #[test]
    fn canary_phase_stored_before_steps_were_tracked_reads_as_step_zero() {
        let old: Phase = serde_json::from_str(r#"{"phase":"canary","stage":2}"#).unwrap();
        assert_eq!(
            old,
            Phase::Canary {
                stage: 2,
                step: 0,
                extensions: 0,
                hold: CanaryHold::Observing,
            }
        );
        let record: StageRecord = serde_json::from_str(
            r#"{"environment":"prod","gates":[],"approved_by":[],"promoted":false}"#,
        )
        .unwrap();
        assert_eq!(record.watch_baseline, None);
    }
}
