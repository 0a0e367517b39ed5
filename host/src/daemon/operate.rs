//! What operators do to releases and environments: approve a stage (or a
//! paused canary step), abort a release, roll an environment back.
//!
//! Rules: a canary leaves traffic with its release — an abort or a rollback
//! while one runs takes the canary down (through the environment's adapter
//! plugin first, then in the same transaction as the record), and the
//! baseline keeps serving.

use super::{Daemon, Error, effects};
use crate::configstore::{ConfigStore, LiveConfig};
use crate::digest::Digest;
use crate::pipeline::definition::{self, BUILTIN_ADAPTER};
use crate::pipeline::executor;
use crate::pipeline::holds;
use crate::pipeline::release::{CanaryHold, Phase, Release, ReleaseId};
use crate::plugins::{self, CandidateView};
use crate::store::audit::{Draft, EventKind};
use crate::store::{Refusal, Tx, TxResult, refuse};
use std::sync::Arc;

impl Daemon {
    /// Approves the stage `id` waits at in `env`: an approval before the
    /// candidate is applied, or a canary step paused because its judgement
    /// could not decide (the step is then promoted).
    pub async fn approve(
        &self,
        actor: &str,
        id: ReleaseId,
        env: &str,
        comment: &str,
    ) -> Result<Release, Error> {
        let r = self
            .store
            .commit(|tx| {
                let mut r = tx.release(id)?;
                let stage = match r.phase {
                    Phase::AwaitingApproval { stage }
                    | Phase::Canary {
                        stage,
                        hold: CanaryHold::Paused,
                        ..
                    } => stage,
                    _ => {
                        return refuse(Refusal::Precondition(format!(
                            "release {id} is not waiting for approval (it is {}{})",
                            r.phase.name(),
                            r.current_environment()
                                .map(|e| format!(" in {e}"))
                                .unwrap_or_default()
                        )));
                    }
                };
                if r.environment(stage) != env {
                    return refuse(Refusal::Precondition(format!(
                        "release {id} waits for approval of {}, not {env}",
                        r.environment(stage)
                    )));
                }
                if r.pipeline.four_eyes && r.submitted_by == actor {
                    return refuse(Refusal::Precondition(format!(
                        "{actor} submitted release {id}, and pipeline {} asks for four eyes: someone else must approve it",
                        r.pipeline.name
                    )));
                }
                if let Phase::Canary {
                    step, extensions, ..
                } = r.phase
                {
                    return approve_paused_canary(tx, r, actor, comment, step, extensions);
                }
                if r.stages[stage].approved_by.iter().any(|a| a == actor) {
                    return refuse(Refusal::Precondition(format!(
                        "{actor} already approved {env} for release {id}; another operator must approve"
                    )));
                }
                r.stages[stage].approved_by.push(actor.to_string());
                r.updated_at_ms = tx.now_ms();
                holds::put_release(tx, &r)?;
                let have = r.stages[stage].approved_by.len();
                let need = r.pipeline.environments[stage].approvals;
                tx.append(
                    Draft::new(
                        EventKind::ReleaseApproved,
                        actor,
                        format!("{env}: approved by {actor} ({have} of {need})"),
                    )
                    .release(id.0, r.phase.name())
                    .environment(env)
                    .detail(serde_json::json!({ "comment": comment })),
                )?;
                Ok(r)
            })
            .await?;
        Ok(r)
    }

    /// Stops a release where it stands; a canary of it leaves traffic.
    pub async fn abort(&self, actor: &str, id: ReleaseId, reason: &str) -> Result<Release, Error> {
        let reason = if reason.trim().is_empty() {
            format!("aborted by {actor}")
        } else {
            format!("aborted by {actor}: {reason}")
        };
        let read = self.release(id)?;
        let effect = match read.phase {
            Phase::Canary { stage, .. } => self.adapter_take_down(&read, stage).await?,
            _ => None,
        };
        let committed = self
            .store
            .commit(|tx| {
                let mut r = tx.release(id)?;
                if r.phase.is_terminal() {
                    return refuse(Refusal::Precondition(format!(
                        "release {id} has already ended ({}); there is nothing to abort",
                        r.phase.name()
                    )));
                }
                let canary_stage = match r.phase {
                    Phase::Canary { stage, .. } => Some(stage),
                    _ => None,
                };
                r.phase = Phase::Aborted {
                    stage: r.phase.stage(),
                    reason: reason.clone(),
                };
                r.updated_at_ms = tx.now_ms();
                holds::put_release(tx, &r)?;
                tx.append(
                    Draft::new(
                        EventKind::ReleaseAborted,
                        actor,
                        format!("release {id} {reason}"),
                    )
                    .release(id.0, r.phase.name()),
                )?;
                let withdrawn = match canary_stage {
                    Some(stage) => executor::withdraw_canary_of(tx, &r, stage, actor, &reason)?,
                    None => None,
                };
                Ok((r, withdrawn))
            })
            .await;
        // An abort that lands while the release's own adapter call is in
        // flight is caught here or by that call's settling: either way the
        // adapter is told the record again.
        effects::settle(self, effect).await;
        let (r, withdrawn) = committed?;
        if let Some(state) = withdrawn {
            self.configstore.publish(state)?;
        }
        Ok(r)
    }

    /// Rolls `env` back: while a canary runs there, takes the canary down
    /// (the active deployment keeps serving); otherwise restores the
    /// previous deployment. A release still under way whose candidate is
    /// taken down ends RolledBack.
    pub async fn rollback_environment(
        &self,
        actor: &str,
        env: &str,
        reason: &str,
    ) -> Result<(Arc<LiveConfig>, Digest), Error> {
        let live = self.configstore.get(env)?;
        // An environment placed by an adapter plugin is restored through
        // it first; the record changes only once the adapter has done so.
        let mut effect = None;
        if let Some(spec) = self.placed_by(&live)?
            && spec.adapter != BUILTIN_ADAPTER
        {
            let restore = if live.state.canary.is_some() {
                live.state.active.as_ref()
            } else {
                live.state.history.last()
            };
            let restore = match restore {
                Some(d) => Some(self.candidate_view(d.digest)?),
                None => None,
            };
            let call = plugins::AdapterCall::Rollback {
                environment: env.to_string(),
                params: spec.adapter_params.clone(),
                restore,
            };
            effect = Some(
                effects::call_adapter(self, &spec.adapter, spec.adapter_timeout, call)
                    .await
                    .map_err(|detail| Error::Adapter {
                        environment: env.to_string(),
                        detail,
                    })?,
            );
        }
        let committed = self
            .store
            .commit(|tx| {
                let (state, down) = ConfigStore::rollback_in(tx, env)?;
                let restored = state
                    .active
                    .as_ref()
                    .map(|d| d.digest.short())
                    .unwrap_or_default();
                let why = if reason.trim().is_empty() {
                    "no reason given".to_string()
                } else {
                    reason.to_string()
                };
                let mut draft = Draft::new(
                    EventKind::EnvRolledBack,
                    actor,
                    format!(
                        "{env}: rolled back from {} to {restored} by {actor}: {why}",
                        down.digest.short()
                    ),
                )
                .environment(env)
                .detail(serde_json::json!({
                    "from": down.digest,
                    "to": state.active.as_ref().map(|d| d.digest),
                    "generation": state.generation,
                    "reason": why,
                }));
                let mut release = tx.release(down.release).ok();
                if let Some(r) = release.as_mut().filter(|r| !r.phase.is_terminal()) {
                    r.phase = Phase::RolledBack {
                        stage: r.phase.stage(),
                        reason: format!("{env} was rolled back by {actor}: {why}"),
                    };
                    r.updated_at_ms = tx.now_ms();
                    holds::put_release(tx, r)?;
                }
                if let Some(r) = &release {
                    draft = draft.release(r.id.0, r.phase.name());
                }
                tx.append(draft)?;
                Ok((state, down))
            })
            .await;
        effects::settle(self, effect).await;
        let (state, down) = committed?;
        self.configstore.publish(state)?;
        Ok((self.configstore.get(env)?, down.digest))
    }

    /// How the environment's live candidate was placed: the environment as
    /// the pipeline of the release that made it live defined it.
    pub(super) fn placed_by(
        &self,
        live: &LiveConfig,
    ) -> Result<Option<definition::Environment>, Error> {
        let Some(active) = &live.state.active else {
            return Ok(None);
        };
        Ok(self.store.release(active.release)?.and_then(|r| {
            r.pipeline
                .environment(&live.state.name)
                .map(|(_, e)| e.clone())
        }))
    }

    pub(super) fn candidate_view(&self, digest: Digest) -> Result<CandidateView, Error> {
        Ok(CandidateView {
            digest,
            bytes: Arc::new(self.store.candidate(&digest)?.unwrap_or_default()),
            metadata: Vec::new(),
        })
    }

    /// Asks the adapter plugin of `release`'s environment at `stage` (if it
    /// has one) to take the canary down and serve the active deployment; the
    /// effect is the caller's to settle once it has committed.
    async fn adapter_take_down(
        &self,
        release: &Release,
        stage: usize,
    ) -> Result<Option<effects::Effect>, Error> {
        let spec = &release.pipeline.environments[stage];
        if spec.adapter == BUILTIN_ADAPTER {
            return Ok(None);
        }
        let live = self.configstore.get(&spec.name)?;
        let restore = match &live.state.active {
            Some(d) => Some(self.candidate_view(d.digest)?),
            None => None,
        };
        let call = plugins::AdapterCall::Rollback {
            environment: spec.name.clone(),
            params: spec.adapter_params.clone(),
            restore,
        };
        effects::call_adapter(self, &spec.adapter, spec.adapter_timeout, call)
            .await
            .map(Some)
            .map_err(|detail| Error::Adapter {
                environment: spec.name.clone(),
                detail,
            })
    }
}

/// Marks a paused canary step approved; its executor promotes it.
fn approve_paused_canary(
    tx: &Tx<'_>,
    mut r: Release,
    actor: &str,
    comment: &str,
    step: usize,
    extensions: u32,
) -> TxResult<Release> {
    let stage = r.phase.stage().unwrap_or_default();
    let env = r.environment(stage).to_string();
    r.phase = Phase::Canary {
        stage,
        step,
        extensions,
        hold: CanaryHold::Approved,
    };
    r.updated_at_ms = tx.now_ms();
    holds::put_release(tx, &r)?;
    tx.append(
        Draft::new(
            EventKind::ReleaseApproved,
            actor,
            format!(
                "{env}: paused canary step {} approved by {actor}; it is promoted",
                step + 1
            ),
        )
        .release(r.id.0, r.phase.name())
        .environment(&env)
        .detail(serde_json::json!({ "comment": comment, "canary_step": step })),
    )?;
    Ok(r)
}
