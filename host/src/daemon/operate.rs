//! What operators do to releases and environments: approve a stage (or a
//! paused canary step), abort a release, roll an environment back.
//!
//! Rules: a canary leaves traffic with its release — an abort or a rollback
//! while one runs takes the canary down (through the environment's adapter
//! plugin first, then in the same transaction as the record), and the
//! baseline keeps serving.

use super::{Daemon, Error};
use crate::configstore::{ConfigStore, LiveConfig};
use crate::digest::Digest;
use crate::pipeline::definition::{self, BUILTIN_ADAPTER};
use crate::pipeline::executor;
use crate::pipeline::holds;
use crate::pipeline::release::machine::{Event, transition};
use crate::pipeline::release::{Phase, Release, ReleaseId, ReleaseReads, ReleaseWrites};
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
            .rt
            .store
            .commit(|tx| {
                let mut r = tx.release(id)?;
                let approved = Event::Approved {
                    environment: env,
                    by: actor,
                };
                let next = transition(&r, &approved)?;
                if let Phase::Canary { .. } = r.phase {
                    return approve_paused_canary(tx, r, next, actor, comment);
                }
                let stage = r.phase.stage().unwrap_or_default();
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
            .rt
            .store
            .commit(|tx| {
                let mut r = tx.release(id)?;
                let canary_stage = match r.phase {
                    Phase::Canary { stage, .. } => Some(stage),
                    _ => None,
                };
                r.phase = transition(
                    &r,
                    &Event::Aborted {
                        reason: reason.clone(),
                    },
                )?;
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
        self.rt.adapters.settle(effect).await;
        let (r, withdrawn) = committed?;
        if let Some(state) = withdrawn {
            self.rt.configstore.publish(state)?;
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
        let live = self.rt.configstore.get(env)?;
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
                self.rt
                    .adapters
                    .call(&spec.adapter, spec.adapter_timeout, call)
                    .await
                    .map_err(|detail| Error::Adapter {
                        environment: env.to_string(),
                        detail,
                    })?,
            );
        }
        let committed = self
            .rt
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
                    r.phase = transition(
                        r,
                        &Event::RolledBack {
                            reason: format!("{env} was rolled back by {actor}: {why}"),
                        },
                    )?;
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
        self.rt.adapters.settle(effect).await;
        let (state, down) = committed?;
        self.rt.configstore.publish(state)?;
        Ok((self.rt.configstore.get(env)?, down.digest))
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
        Ok(self.rt.store.release(active.release)?.and_then(|r| {
            r.pipeline
                .environment(&live.state.name)
                .map(|(_, e)| e.clone())
        }))
    }

    pub(super) fn candidate_view(&self, digest: Digest) -> Result<CandidateView, Error> {
        Ok(CandidateView {
            digest,
            bytes: Arc::new(self.rt.store.candidate(&digest)?.unwrap_or_default()),
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
    ) -> Result<Option<crate::plugins::adapter::Effect>, Error> {
        let spec = &release.pipeline.environments[stage];
        if spec.adapter == BUILTIN_ADAPTER {
            return Ok(None);
        }
        let live = self.rt.configstore.get(&spec.name)?;
        let restore = match &live.state.active {
            Some(d) => Some(self.candidate_view(d.digest)?),
            None => None,
        };
        let call = plugins::AdapterCall::Rollback {
            environment: spec.name.clone(),
            params: spec.adapter_params.clone(),
            restore,
        };
        self.rt
            .adapters
            .call(&spec.adapter, spec.adapter_timeout, call)
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
    next: Phase,
    actor: &str,
    comment: &str,
) -> TxResult<Release> {
    let stage = r.phase.stage().unwrap_or_default();
    let env = r.environment(stage).to_string();
    let Phase::Canary { step, .. } = next else {
        return refuse(Refusal::Precondition(format!(
            "release {} has no paused canary step to approve",
            r.id
        )));
    };
    r.phase = next;
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
