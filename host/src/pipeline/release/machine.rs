//! The release state machine as one pure function: given a release as
//! stored and what happened, the phase it moves to, or why that cannot
//! happen to it now.
//!
//! Rules: [`transition`] reads nothing but the release and the event, and
//! does nothing; the executor and the operators' actions do the effects and
//! commit what it decides. So a release read back after a crash decides
//! exactly as it would have before it, and every rule of the machine is in
//! this file:
//! - a terminal phase absorbs every event;
//! - an approval is accepted only where a stage waits for one (approvals
//!   before the candidate is applied, or a paused canary step);
//! - an abort, or an operator's rollback of what the release put live,
//!   ends any phase that is not terminal;
//! - an effect (apply, canary step, watch) can fail only in a phase that
//!   runs one.

use super::{CanaryHold, GateRecord, Phase, Release};
use crate::store::Refusal;

/// What happened to a release.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// The executor takes up a pending release.
    Started,
    /// A stage's plugins refused the pipeline's parameters before any gate
    /// ran: the pipeline is wrong, not the candidate.
    Misconfigured {
        gate: Option<String>,
        reason: String,
    },
    /// The gates of the current stage gave their verdicts.
    GatesJudged { records: &'a [GateRecord] },
    /// An operator approved the stage in `environment`.
    Approved { environment: &'a str, by: &'a str },
    /// The executor looks at the approvals the waiting stage has.
    ApprovalsCounted,
    /// The candidate was placed: as a canary's first step, or in full.
    Placed { canary: bool },
    /// A canary step ended with this verdict.
    StepJudged(Step),
    /// The watch after promotion ended without a regression.
    Watched,
    /// An adapter call, a canary step or the watch failed.
    EffectFailed { reason: String },
    /// The release was rolled back: by the canary's judge, the watch, or
    /// an operator rolling its environment back.
    RolledBack { reason: String },
    /// An operator aborted the release.
    Aborted { reason: String },
    /// The daemon restarted and takes the release up again.
    Resumed,
}

/// How a canary step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It passed: the next step, or full placement after the last.
    Passed,
    /// Undecided, observed for another step's time.
    Extended,
    /// Undecided, held for an operator.
    Paused,
}

/// The phase `r` moves to on `event`.
pub fn transition(r: &Release, event: &Event<'_>) -> Result<Phase, Refusal> {
    let refused = |what: &str| {
        Err(Refusal::Precondition(format!(
            "release {} cannot {what}: it is {}{}",
            r.id,
            r.phase.name(),
            r.current_environment()
                .map(|e| format!(" in {e}"))
                .unwrap_or_default()
        )))
    };
    // An approval names what it is refused for itself (terminal phases
    // included): it is not waiting for one.
    if r.phase.is_terminal() && !matches!(event, Event::Approved { .. }) {
        return Err(Refusal::Precondition(match event {
            Event::Aborted { .. } => format!(
                "release {} has already ended ({}); there is nothing to abort",
                r.id,
                r.phase.name()
            ),
            _ => format!("release {} has already ended ({})", r.id, r.phase.name()),
        }));
    }
    let stage = r.phase.stage();
    match (event, &r.phase) {
        (Event::Started, Phase::Pending) => Ok(Phase::Gating { stage: 0 }),
        (Event::Started, _) => refused("start again"),
        (Event::Misconfigured { gate, reason }, Phase::Gating { stage }) => Ok(Phase::Failed {
            stage: Some(*stage),
            gate: gate.clone(),
            reason: reason.clone(),
            misconfigured: true,
        }),
        (Event::GatesJudged { records }, Phase::Gating { stage }) => {
            let env = r.environment(*stage);
            match records
                .iter()
                .find(|g| g.blocking && !g.outcome.lets_through())
            {
                Some(g) => Ok(Phase::Failed {
                    stage: Some(*stage),
                    gate: Some(g.gate.clone()),
                    reason: format!("gate {} failed in {env}: {}", g.gate, g.reason),
                    misconfigured: false,
                }),
                None => Ok(r.after_gates(*stage)),
            }
        }
        (Event::Misconfigured { .. } | Event::GatesJudged { .. }, _) => {
            refused("take gate verdicts")
        }
        (Event::Approved { environment, by }, phase) => approve(r, phase, environment, by),
        (Event::ApprovalsCounted, Phase::AwaitingApproval { stage }) => Ok(r.after_gates(*stage)),
        (Event::ApprovalsCounted, _) => refused("count approvals"),
        (Event::Placed { canary }, Phase::Applying { stage }) => Ok(match canary {
            true => Phase::Canary {
                stage: *stage,
                step: 0,
                extensions: 0,
                hold: CanaryHold::Observing,
            },
            false => Phase::Promoted { stage: *stage },
        }),
        (Event::Placed { .. }, Phase::Canary { stage, .. }) => {
            // The last canary step placed the candidate in full.
            Ok(Phase::Promoted { stage: *stage })
        }
        (Event::Placed { .. }, _) => refused("be placed"),
        (
            Event::StepJudged(step),
            Phase::Canary {
                stage,
                step: at,
                extensions,
                hold,
            },
        ) => canary_step(r, *stage, *at, *extensions, *hold, *step),
        (Event::StepJudged(_), _) => refused("judge a canary step"),
        (Event::Watched, Phase::Promoted { stage }) => Ok(r.after_promotion(*stage)),
        (Event::Watched, _) => refused("end a watch"),
        (
            Event::EffectFailed { reason },
            Phase::Applying { .. } | Phase::Canary { .. } | Phase::Promoted { .. },
        ) => Ok(Phase::Failed {
            stage,
            gate: None,
            reason: reason.clone(),
            misconfigured: false,
        }),
        (Event::EffectFailed { .. }, _) => refused("fail an effect"),
        (Event::RolledBack { reason }, _) => Ok(Phase::RolledBack {
            stage,
            reason: reason.clone(),
        }),
        (Event::Aborted { reason }, _) => Ok(Phase::Aborted {
            stage,
            reason: reason.clone(),
        }),
        (Event::Resumed, phase) => Ok(phase.clone()),
    }
}

fn approve(r: &Release, phase: &Phase, env: &str, by: &str) -> Result<Phase, Refusal> {
    let id = r.id;
    let stage = match phase {
        Phase::AwaitingApproval { stage }
        | Phase::Canary {
            stage,
            hold: CanaryHold::Paused,
            ..
        } => *stage,
        _ => {
            return Err(Refusal::Precondition(format!(
                "release {id} is not waiting for approval (it is {}{})",
                phase.name(),
                r.current_environment()
                    .map(|e| format!(" in {e}"))
                    .unwrap_or_default()
            )));
        }
    };
    if r.environment(stage) != env {
        return Err(Refusal::Precondition(format!(
            "release {id} waits for approval of {}, not {env}",
            r.environment(stage)
        )));
    }
    if r.pipeline.four_eyes && r.submitted_by == by {
        return Err(Refusal::Precondition(format!(
            "{by} submitted release {id}, and pipeline {} asks for four eyes: someone else must approve it",
            r.pipeline.name
        )));
    }
    match phase {
        Phase::Canary {
            stage,
            step,
            extensions,
            ..
        } => Ok(Phase::Canary {
            stage: *stage,
            step: *step,
            extensions: *extensions,
            hold: CanaryHold::Approved,
        }),
        _ if r.stages[stage].approved_by.iter().any(|a| a == by) => Err(Refusal::Precondition(
            format!("{by} already approved {env} for release {id}; another operator must approve"),
        )),
        // The approval is recorded on the stage; the executor moves on once
        // enough are in (`ApprovalsCounted`).
        _ => Ok(phase.clone()),
    }
}

fn canary_step(
    r: &Release,
    stage: usize,
    at: usize,
    extensions: u32,
    hold: CanaryHold,
    step: Step,
) -> Result<Phase, Refusal> {
    let steps = r.canary_spec(stage).map_or(0, |c| c.steps.len());
    let max_extensions = r.canary_spec(stage).map_or(0, |c| c.max_extensions);
    match step {
        Step::Passed if at + 1 < steps => Ok(Phase::Canary {
            stage,
            step: at + 1,
            extensions: 0,
            hold: CanaryHold::Observing,
        }),
        // The last step passed: the candidate is placed in full.
        Step::Passed => Ok(Phase::Promoted { stage }),
        Step::Extended if extensions < max_extensions && hold == CanaryHold::Observing => {
            Ok(Phase::Canary {
                stage,
                step: at,
                extensions: extensions + 1,
                hold,
            })
        }
        Step::Extended => Err(Refusal::Precondition(format!(
            "release {} cannot observe its canary step longer: {} of {max_extensions} extension(s) used",
            r.id, extensions
        ))),
        Step::Paused if hold == CanaryHold::Observing => Ok(Phase::Canary {
            stage,
            step: at,
            extensions,
            hold: CanaryHold::Paused,
        }),
        Step::Paused => Err(Refusal::Precondition(format!(
            "release {}'s canary step is already held for an operator",
            r.id
        ))),
    }
}

#[cfg(test)]
mod tests;
