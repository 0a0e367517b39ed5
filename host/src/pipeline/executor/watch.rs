//! The watch after full promotion: the promoted candidate, which services
//! report as what is live, judged against the baseline statistics kept
//! from the last canary step (a historical control). Only the anytime-valid
//! metrics can be judged, and a critical one failing restores the previous
//! deployment. The control no longer grows, so the guarantee is
//! approximate: the watch is for a gross regression that shows only under
//! full load, not for a subtle one.

use super::takedown::{adapter_rollback, evidence, publish, rollback_detail};
use super::{DAEMON, Note, Runtime, advance, advance_noted, decide, describe_phase, wait_for_news};
use crate::canary::live::{Mode, Position, Snapshot};
use crate::configstore::ConfigStore;
use crate::configstore::EnvWrites;
use crate::pipeline::release::Release;
use crate::pipeline::release::machine::Event;
use crate::store;
use crate::store::audit::{Draft, EventKind};
use std::sync::{Arc, Mutex};

/// After promotion: the watch, if the stage has one and a canary ran, then
/// the next stage.
pub(super) async fn after_promotion(
    rt: &Runtime,
    release: &Release,
    stage: usize,
) -> Result<Release, store::Error> {
    let next = decide(release, Event::Watched)?;
    let spec = release.canary_spec(stage);
    let (Some(spec), Some(period), Some(kept)) = (
        spec,
        spec.and_then(|s| s.watch_duration()),
        release.stages[stage].watch_baseline,
    ) else {
        return advance(rt, release, next, |_, _| Ok(())).await;
    };
    let env = release.environment(stage).to_string();
    let config = match spec.judge_config() {
        Ok(c) => c,
        Err(e) => {
            let note = Note {
                message: format!(
                    "{env}: no watch after promotion: the canary settings cannot be used: {e}"
                ),
                detail: serde_json::json!({}),
            };
            return advance_noted(rt, release, next, Some(note), |_, _| Ok(())).await;
        }
    };
    let position = Position {
        release: release.id.0,
        environment: env.clone(),
        stage,
        step: spec.steps.len().saturating_sub(1),
        weight_percent: 100,
        mode: Mode::Watch,
    };
    let (running, _) = rt.board.open(position, config, Some(&kept), period);
    if let Some(fired) = running.fired() {
        return restore_previous(rt, release, stage, fired).await;
    }
    tokio::select! {
        biased;
        fired = running.triggered() => restore_previous(rt, release, stage, fired).await,
        _ = tokio::time::sleep_until(running.deadline()) => {
            let last = running.latest();
            let seen = match &last {
                Some(s) => format!("last look: {}", s.judgement.reason),
                None => "no observations arrived, so nothing was judged".to_string(),
            };
            let note = Note {
                message: format!(
                    "{env}: watch of {period:?} after promotion ended with no critical regression; {seen}"
                ),
                detail: evidence(last.as_deref()),
            };
            let r = advance_noted(rt, release, next, Some(note), |_, _| Ok(())).await?;
            rt.board.end(release.id.0, last.as_deref().cloned());
            Ok(r)
        }
        _ = wait_for_news(rt, release.id) => Ok(release.clone()),
    }
}

/// The watch found a regression: the previous deployment serves again.
async fn restore_previous(
    rt: &Runtime,
    release: &Release,
    stage: usize,
    judged: Arc<Snapshot>,
) -> Result<Release, store::Error> {
    let env = release.environment(stage).to_string();
    let why = judged.judgement.reason.clone();
    let reason = format!("the watch after promotion in {env} found a regression: {why}");
    let detail = evidence(Some(&judged));
    let effect = match adapter_rollback(rt, release, stage, true).await {
        Ok(effect) => effect,
        Err(e) => {
            rt.board.end(release.id.0, Some((*judged).clone()));
            let failed = decide(
                release,
                Event::EffectFailed {
                    reason: format!(
                        "{reason}; but the adapter could not restore the previous deployment: {e}; roll back by hand with `gatehouse rollback {env}`"
                    ),
                },
            )?;
            return advance(rt, release, failed, |_, _| Ok(())).await;
        }
    };
    let restored = Mutex::new(None);
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
    let r = advance_noted(rt, release, next, Some(note), |tx, r| {
        let ours = tx
            .environment(&env)?
            .and_then(|s| s.active)
            .is_some_and(|a| a.release == r.id);
        if ours {
            let (state, down) = ConfigStore::rollback_in(tx, &env)?;
            let serving = state.active.as_ref().map(|a| a.digest);
            tx.append(
                Draft::new(
                    EventKind::EnvRolledBack,
                    DAEMON,
                    format!(
                        "{env}: rolled back from {} to {} by the daemon: {why}",
                        down.digest.short(),
                        serving.map(|d| d.short()).unwrap_or_default()
                    ),
                )
                .release(r.id.0, r.phase.name())
                .environment(&env)
                .detail(rollback_detail(
                    &down.digest,
                    serving,
                    &state,
                    &reason,
                    &detail,
                )),
            )?;
            *lock(&restored) = Some(state);
        }
        Ok(())
    })
    .await;
    rt.adapters.settle(effect).await;
    let r = r?;
    publish(rt, restored);
    rt.board.end(release.id.0, Some((*judged).clone()));
    Ok(r)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
