//! Placing a candidate: applying it through the environment's adapter (or
//! entering its canary), and calling adapter plugins with retries.

use super::{
    DAEMON, Note, Runtime, advance, advance_noted, canary, decide, still_as_read, wait_for_news_on,
};
use crate::configstore::{ConfigStore, Turn};
use crate::pipeline::definition::BUILTIN_ADAPTER;
use crate::pipeline::holds;
use crate::pipeline::release::machine::Event;
use crate::pipeline::release::{PhaseName, Release};
use crate::plugins::{AdapterCall, CandidateView};
use crate::store;
use crate::store::audit::{Draft, EventKind};
use std::sync::Arc;

/// Applying a stage: first the release takes its environment, or waits in
/// line for it (see [`crate::pipeline::holds`]). Then, with a canary and
/// something live to compare against, the candidate enters its first canary
/// step; otherwise it is applied directly (saying why a canary was skipped).
pub(super) async fn apply(
    rt: &Runtime,
    release: &Release,
    stage: usize,
) -> Result<Release, store::Error> {
    // Subscribed before the claim, so a let-go that lands just after it
    // still wakes this release.
    let bus = rt.store.subscribe();
    if let Turn::Waiting { .. } = take_turn(rt, release).await? {
        // Any event about the environment may be its let-go.
        wait_for_news_on(bus, release.id, holds::held_by(release)).await;
        return Ok(release.clone());
    }
    let mut note = None;
    if release.canary_spec(stage).is_some() {
        let env = release.environment(stage);
        match canary::baseline(rt, env, release.candidate) {
            Ok(()) => return canary::enter(rt, release, stage, 0, None).await,
            Err(why) => {
                note = Some(Note {
                    message: format!("{env}: promoted (canary skipped: {why})"),
                    detail: serde_json::json!({ "canary_skipped": why }),
                })
            }
        }
    }
    apply_now(rt, release, stage, note, None).await
}

/// Claims the release's environment in the store; joining the line is
/// audited with the holder and the place.
async fn take_turn(rt: &Runtime, read: &Release) -> Result<Turn, store::Error> {
    rt.store
        .commit(|tx| {
            let mut r = still_as_read(tx, read)?;
            let turn = holds::claim(tx, &mut r)?;
            if let (
                Turn::Waiting {
                    holder,
                    place,
                    joined: true,
                },
                Some(env),
            ) = (&turn, holds::held_by(&r))
            {
                let message = format!(
                    "release {} {}",
                    r.id,
                    r.waiting.as_deref().unwrap_or("waits")
                );
                tx.append(
                    Draft::new(EventKind::ReleaseWaiting, DAEMON, message)
                        .release(r.id.0, r.phase.name())
                        .environment(env)
                        .detail(serde_json::json!({
                            "waiting_for": "environment",
                            "holder": holder.map(|h| h.0),
                            "place": place,
                        })),
                )?;
            }
            Ok(turn)
        })
        .await
}

/// Applies the candidate through the environment's adapter, then records
/// it as live and promotes, in one transaction. An adapter plugin is called
/// first (again after a restart: adapters are idempotent by digest); the
/// built-in config store needs no call, its record is the environment.
/// `watch_baseline` keeps a canary's baseline statistics for the watch.
pub(super) async fn apply_now(
    rt: &Runtime,
    release: &Release,
    stage: usize,
    note: Option<Note>,
    watch_baseline: Option<crate::canary::ArmSummary>,
) -> Result<Release, store::Error> {
    let env = release.environment(stage).to_string();
    let spec = &release.pipeline.environments[stage];
    let mut adapter_digest = None;
    let mut effect = None;
    if spec.adapter != BUILTIN_ADAPTER {
        let bytes = rt.store.candidate(&release.candidate)?.unwrap_or_default();
        let call = AdapterCall::Apply {
            environment: env.clone(),
            params: spec.adapter_params.clone(),
            candidate: CandidateView {
                digest: release.candidate,
                bytes: Arc::new(bytes),
                metadata: Vec::new(),
            },
        };
        match rt
            .adapters
            .call(&spec.adapter, spec.adapter_timeout, call)
            .await
        {
            Ok(done) => {
                adapter_digest = Some(done.plugin);
                effect = Some(done);
            }
            Err(reason) => {
                let reason = format!(
                    "adapter {} could not apply {} to {env}: {reason}",
                    spec.adapter,
                    release.candidate.short()
                );
                let failed = decide(release, Event::EffectFailed { reason })?;
                return advance(rt, release, failed, |_, _| Ok(())).await;
            }
        }
    }
    let applied = std::sync::Mutex::new(None);
    let placed = decide(release, Event::Placed { canary: false })?;
    let r = advance_noted(rt, release, placed, note, |tx, r| {
        let changed = ConfigStore::apply_in(tx, &env, r.candidate, r.id)?;
        if let Some(state) = &changed {
            tx.append(
                Draft::new(
                    EventKind::EnvApplied,
                    DAEMON,
                    format!(
                        "{env}: {} is live (generation {})",
                        r.candidate.short(),
                        state.generation
                    ),
                )
                .release(r.id.0, PhaseName::Promoted)
                .environment(&env)
                .detail(serde_json::json!({
                    "digest": r.candidate,
                    "generation": state.generation,
                    "adapter": spec.adapter,
                    "adapter_digest": adapter_digest,
                })),
            )?;
        }
        r.stages[stage].promoted = true;
        r.stages[stage].watch_baseline = watch_baseline;
        *applied.lock().unwrap_or_else(|p| p.into_inner()) = changed;
        Ok(())
    })
    .await;
    rt.adapters.settle(effect).await;
    let r = r?;
    let state = applied.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(state) = state
        && let Err(e) = rt.configstore.publish(state)
    {
        tracing::error!(error = %e, environment = %env, "cannot publish the new configuration to watchers");
    }
    Ok(r)
}
