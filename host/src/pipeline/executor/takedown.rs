//! Taking a canary, or a promoted candidate under watch, out of traffic:
//! the adapter plugin (if any) first, then the release's phase, the
//! record and the events in one transaction with the evidence, then the
//! watchers.

use super::canary::candidate_view;
use super::{DAEMON, Note, Runtime, advance, advance_noted, decide, describe_phase};
use crate::canary::live::Snapshot;
use crate::configstore::EnvWrites;
use crate::configstore::{ConfigStore, EnvState};
use crate::digest::Digest;
use crate::pipeline::definition::BUILTIN_ADAPTER;
use crate::pipeline::release::Release;
use crate::pipeline::release::ReleaseWrites;
use crate::pipeline::release::machine::Event;
use crate::plugins::AdapterCall;
use crate::plugins::adapter::Effect;
use crate::store::audit::{Draft, EventKind};
use crate::store::{self, Tx, TxResult};
use std::sync::{Arc, Mutex};

/// Rolls the canary back: the adapter (if any) restores the baseline, then
/// the release ends RolledBack and the record drops the canary, in one
/// transaction with the evidence.
pub(super) async fn take_down(
    rt: &Runtime,
    release: &Release,
    stage: usize,
    judged: Option<Arc<Snapshot>>,
    why: String,
) -> Result<Release, store::Error> {
    let env = release.environment(stage).to_string();
    let why = match (&judged, why.is_empty()) {
        (Some(s), true) => s.judgement.reason.clone(),
        _ => why,
    };
    let reason = format!("canary in {env} rolled back automatically: {why}");
    let detail = evidence(judged.as_deref());
    let last = judged.as_deref().cloned();
    let effect = match adapter_rollback(rt, release, stage, false).await {
        Ok(effect) => effect,
        Err(e) => {
            rt.board.end(release.id.0, last);
            let failed = decide(
                release,
                Event::EffectFailed {
                    reason: format!(
                        "{reason}; but the adapter could not take the canary down: {e}; it may still serve: roll back by hand with `gatehouse rollback {env}`"
                    ),
                },
            )?;
            return advance(rt, release, failed, |_, _| Ok(())).await;
        }
    };
    let withdrawn = Mutex::new(None);
    let next = decide(
        release,
        Event::RolledBack {
            reason: reason.clone(),
        },
    )?;
    let note = Note {
        message: describe_phase(release, &next),
        detail: detail.clone(),
    };
    let r =
        advance_noted(rt, release, next, Some(note), |tx, r| {
            let ours = tx
                .environment(&env)?
                .and_then(|s| s.canary)
                .is_some_and(|c| c.release == r.id);
            if ours && let Some((state, down)) = ConfigStore::withdraw_canary_in(tx, &env)? {
                let serving = state.active.as_ref().map(|a| a.digest);
                tx.append(
                Draft::new(
                    EventKind::EnvRolledBack,
                    DAEMON,
                    format!(
                        "{env}: canary {} taken out of traffic by the daemon; {} serves alone: {why}",
                        down.digest.short(),
                        serving.map(|d| d.short()).unwrap_or_default()
                    ),
                )
                .release(r.id.0, r.phase.name())
                .environment(&env)
                .detail(rollback_detail(&down.digest, serving, &state, &reason, &detail)),
            )?;
                *lock(&withdrawn) = Some(state);
            }
            Ok(())
        })
        .await;
    rt.adapters.settle(effect).await;
    let r = r?;
    publish(rt, withdrawn);
    rt.board.end(release.id.0, last);
    Ok(r)
}

/// Takes a canary down after its release failed for another reason (the
/// adapter could not promote it); the failure is already recorded.
pub(super) async fn withdraw(rt: &Runtime, release: &Release, stage: usize) {
    let env = release.environment(stage).to_string();
    let effect = match adapter_rollback(rt, release, stage, false).await {
        Ok(effect) => effect,
        Err(e) => {
            tracing::error!(environment = %env, error = %e, "cannot take the canary down through the adapter");
            return;
        }
    };
    let done = rt
        .store
        .commit(|tx| {
            let r = tx.release(release.id)?;
            withdraw_canary_of(tx, &r, stage, DAEMON, "failed")
        })
        .await;
    rt.adapters.settle(effect).await;
    match done {
        Ok(state) => publish(rt, Mutex::new(state)),
        Err(e) => {
            tracing::error!(environment = %env, error = %e, "cannot record the canary's removal")
        }
    }
}

/// Asks the environment's adapter plugin (if it has one) to take the canary
/// down and serve the baseline — or, after full promotion (`previous`), the
/// deployment before the candidate. The call's effect is the caller's to
/// settle once it has committed.
pub(super) async fn adapter_rollback(
    rt: &Runtime,
    release: &Release,
    stage: usize,
    previous: bool,
) -> Result<Option<Effect>, String> {
    let spec = &release.pipeline.environments[stage];
    if spec.adapter == BUILTIN_ADAPTER {
        return Ok(None);
    }
    let live = rt.configstore.get(&spec.name).map_err(|e| e.to_string())?;
    let restore = if previous {
        live.state.history.last()
    } else {
        live.state.active.as_ref()
    };
    let restore = match restore {
        Some(d) => Some(candidate_view(rt, d.digest).map_err(|e| e.to_string())?),
        None => None,
    };
    let call = AdapterCall::Rollback {
        environment: spec.name.clone(),
        params: spec.adapter_params.clone(),
        restore,
    };
    rt.adapters
        .call(&spec.adapter, spec.adapter_timeout, call)
        .await
        .map(Some)
}

/// The judgement as an event's detail: `{"canary": snapshot}`.
pub(super) fn evidence(judged: Option<&Snapshot>) -> serde_json::Value {
    match judged {
        Some(s) => serde_json::json!({ "canary": s }),
        None => serde_json::json!({}),
    }
}

pub(super) fn rollback_detail(
    from: &Digest,
    to: Option<Digest>,
    state: &EnvState,
    reason: &str,
    evidence: &serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "from": from,
        "to": to,
        "generation": state.generation,
        "reason": reason,
        "automatic": true,
        "canary": evidence.get("canary"),
    })
}

pub(super) fn publish(rt: &Runtime, state: Mutex<Option<EnvState>>) {
    let state = state.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(state) = state {
        let env = state.name.clone();
        if let Err(e) = rt.configstore.publish(state) {
            tracing::error!(error = %e, environment = %env, "cannot publish the new configuration to watchers");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes `r`'s canary in the environment at `stage` out of the record, if
/// it is still there, with an event saying why.
pub fn withdraw_canary_of(
    tx: &Tx<'_>,
    r: &Release,
    stage: usize,
    actor: &str,
    why: &str,
) -> TxResult<Option<EnvState>> {
    let env = r.environment(stage).to_string();
    let ours = tx
        .environment(&env)?
        .and_then(|s| s.canary)
        .is_some_and(|c| c.release == r.id);
    if !ours {
        return Ok(None);
    }
    let Some((state, down)) = ConfigStore::withdraw_canary_in(tx, &env)? else {
        return Ok(None);
    };
    tx.append(
        Draft::new(
            EventKind::EnvRolledBack,
            actor,
            format!(
                "{env}: canary {} taken out of traffic: release {} {why}",
                down.digest.short(),
                r.id
            ),
        )
        .release(r.id.0, r.phase.name())
        .environment(&env)
        .detail(serde_json::json!({
            "from": down.digest,
            "to": state.active.as_ref().map(|d| d.digest),
            "generation": state.generation,
            "reason": why,
        })),
    )?;
    Ok(Some(state))
}
