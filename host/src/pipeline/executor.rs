//! Drives one release down its pipeline, one persisted phase at a time.
//!
//! Rules: read the release, do the one effect its phase guards, then commit
//! the next phase only if the release is still in the phase we read
//! (compare-and-set) — an abort or rollback that landed meanwhile wins, and
//! this task stops. A phase is always durable before its effect starts.
//! The executor takes a narrow [`Runtime`] (the store, the plugins, the
//! built-in environment, the canary board and the adapter calls), never the
//! daemon that owns it. The canary stage (steps, judgements, automatic
//! rollback, the watch after promotion) lives in [`canary`].

mod apply;
mod canary;
mod takedown;
mod watch;

use apply::{apply, apply_now};
pub use takedown::withdraw_canary_of;

use crate::canary::live::Board;
use crate::configstore::ConfigStore;
pub use crate::ids::DAEMON;
use crate::pipeline::definition::ParamSite;
use crate::pipeline::holds;
use crate::pipeline::release::machine::{Event, transition};
use crate::pipeline::release::{
    CanaryHold, GateRecord, Outcome, Phase, PhaseName, Release, ReleaseId, ReleaseReads,
    ReleaseWrites,
};
use crate::plugins::adapter::Adapters;
use crate::plugins::params::Unasked;
use crate::plugins::sandbox::Limits;
use crate::plugins::{
    Attachments, CALL_MEMORY_LIMIT, CandidateView, GateInput, PluginKind, Plugins,
};
use crate::store::audit::{Draft, EventKind};
use crate::store::{self, Refusal, Store, Tx, TxResult, refuse};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// What driving a release needs, and nothing more.
pub struct Runtime {
    pub store: Store,
    pub plugins: Arc<Plugins>,
    pub configstore: ConfigStore,
    /// Canaries running now, fed by serving services' reports.
    pub board: Board,
    /// Adapter calls, one environment's at a time.
    pub adapters: Adapters,
}

/// Runs the release until it is terminal, and returns then. A failing store
/// (a full disk, say) leaves the release in its last durable phase and is
/// tried again after a back-off; the daemon stops the task by dropping it.
pub async fn drive(rt: Arc<Runtime>, id: ReleaseId) {
    let span = tracing::info_span!("release", release_id = id.0);
    async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match step(&rt, id).await {
                Ok(Flow::Continue) => backoff = Duration::from_millis(100),
                Ok(Flow::Done) => break,
                Err(e) => {
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "release step failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
    .instrument(span)
    .await;
}

enum Flow {
    Continue,
    Done,
}

async fn step(rt: &Arc<Runtime>, id: ReleaseId) -> Result<Flow, store::Error> {
    let Some(release) = rt.store.release(id)? else {
        return Ok(Flow::Done);
    };
    let outcome = match release.phase.clone() {
        p if p.is_terminal() => {
            // An abort or an operator's rollback may have ended a canary
            // this task was running; stop feeding it.
            rt.board.end(id.0, None);
            return Ok(Flow::Done);
        }
        Phase::Pending => {
            let next = decide(&release, Event::Started)?;
            advance(rt, &release, next, |_, _| Ok(())).await
        }
        Phase::Gating { stage } => run_gates(rt, &release, stage).await,
        Phase::AwaitingApproval { .. } => {
            let next = decide(&release, Event::ApprovalsCounted)?;
            if next == release.phase {
                wait_for_news(rt, id).await;
                return Ok(Flow::Continue);
            }
            advance(rt, &release, next, |_, _| Ok(())).await
        }
        Phase::Applying { stage } => apply(rt, &release, stage).await,
        Phase::Canary {
            stage,
            step,
            extensions,
            hold,
        } => canary::run(rt, &release, stage, step, extensions, hold).await,
        Phase::Promoted { stage } => watch::after_promotion(rt, &release, stage).await,
        // Terminal phases returned above.
        _ => return Ok(Flow::Done),
    };
    match outcome {
        Ok(_) | Err(store::Error::Refused(Refusal::Stale(_))) => Ok(Flow::Continue),
        Err(e) => Err(e),
    }
}

/// The phase the state machine moves `release` to on `event`. Asked only
/// where the executor knows the phase allows the event; a refusal would be
/// a bug, and leaves the release where it is.
fn decide(release: &Release, event: Event<'_>) -> Result<Phase, store::Error> {
    Ok(transition(release, &event)?)
}

/// What a transition's phase event says beyond the phase: its own words,
/// and evidence merged into the event's detail (e.g. a canary judgement).
pub(crate) struct Note {
    pub message: String,
    pub detail: serde_json::Value,
}

/// Commits `next` if the release is still as read, with `extra` adding its
/// own changes and events to the same transaction.
async fn advance(
    rt: &Runtime,
    read: &Release,
    next: Phase,
    extra: impl Fn(&Tx<'_>, &mut Release) -> TxResult<()>,
) -> Result<Release, store::Error> {
    advance_noted(rt, read, next, None, extra).await
}

/// [`advance`], with the phase event worded and enriched by `note`.
async fn advance_noted(
    rt: &Runtime,
    read: &Release,
    next: Phase,
    note: Option<Note>,
    extra: impl Fn(&Tx<'_>, &mut Release) -> TxResult<()>,
) -> Result<Release, store::Error> {
    let message = match &note {
        Some(n) => n.message.clone(),
        None => describe_phase(read, &next),
    };
    let mut detail = serde_json::to_value(&next).unwrap_or_default();
    if let (Some(map), Some(serde_json::Value::Object(more))) =
        (detail.as_object_mut(), note.map(|n| n.detail))
    {
        map.extend(more);
    }
    rt.store
        .commit(|tx| {
            let mut r = still_as_read(tx, read)?;
            r.phase = next.clone();
            r.updated_at_ms = tx.now_ms();
            extra(tx, &mut r)?;
            holds::put_release(tx, &r)?;
            let mut draft = Draft::new(EventKind::ReleasePhase, DAEMON, message.clone())
                .release(r.id.0, r.phase.name())
                .detail(detail.clone());
            if let Some(env) = r.current_environment() {
                draft = draft.environment(env);
            }
            tx.append(draft)?;
            Ok(r)
        })
        .await
}

/// The release as stored, refused as stale unless it is still in the
/// phase `read` was in: an abort or rollback that landed meanwhile wins.
fn still_as_read(tx: &Tx<'_>, read: &Release) -> TxResult<Release> {
    let r = tx.release(read.id)?;
    if r.phase != read.phase {
        return refuse(Refusal::Stale(read.id));
    }
    Ok(r)
}

fn describe_phase(r: &Release, next: &Phase) -> String {
    let env = |s: &usize| r.environment(*s).to_string();
    match next {
        Phase::Pending => format!("release {} is pending", r.id),
        Phase::Gating { stage } => format!("{}: running gates", env(stage)),
        Phase::AwaitingApproval { stage } => format!(
            "{}: gates passed; waiting for {} approval(s)",
            env(stage),
            r.pipeline.environments[*stage].approvals
        ),
        Phase::Applying { stage } => format!("{}: applying {}", env(stage), r.candidate.short()),
        Phase::Canary {
            stage, step, hold, ..
        } => {
            let steps = r.canary_spec(*stage).map_or(&[][..], |c| &c.steps[..]);
            let weight = steps.get(*step).copied().unwrap_or(0);
            let held = match hold {
                CanaryHold::Observing => "",
                CanaryHold::Paused => ", paused for an operator",
                CanaryHold::Approved => ", approved",
            };
            format!(
                "{}: canary at {weight}% (step {} of {}){held}",
                env(stage),
                step + 1,
                steps.len()
            )
        }
        Phase::Promoted { stage } => format!("{}: promoted", env(stage)),
        Phase::Succeeded => format!("release {} succeeded", r.id),
        Phase::Failed { reason, .. } => format!("release {} failed: {reason}", r.id),
        Phase::RolledBack { reason, .. } => format!("release {} rolled back: {reason}", r.id),
        Phase::Aborted { reason, .. } => format!("release {} aborted: {reason}", r.id),
    }
}

/// Waits until something may have changed for this release: an event about
/// it (approval, abort), or a while, whichever comes first.
async fn wait_for_news(rt: &Runtime, id: ReleaseId) {
    // The periodic re-read covers an event that landed between reading the
    // release and subscribing.
    wait_for_news_on(rt.store.subscribe(), id, None).await
}

/// [`wait_for_news`] on a bus subscribed earlier, waking also on any event
/// about `environment` when one is named.
async fn wait_for_news_on(
    mut bus: tokio::sync::broadcast::Receiver<Arc<crate::store::audit::AuditEvent>>,
    id: ReleaseId,
    environment: Option<&str>,
) {
    let wait = async {
        loop {
            match bus.recv().await {
                Ok(e) if e.release == Some(id.0) => break,
                Ok(e) if environment.is_some() && e.environment.as_deref() == environment => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    };
    // A lagging bus, or a change without an event: look again anyway.
    let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
}

/// The stage's plugins asked about the parameters this release carries,
/// before any gate runs: a refusal, or a plugin that is not there, is the
/// pipeline's fault and fails the release as such, never as a gate's
/// verdict on the candidate. Returns the gate at fault (if a gate) and why.
async fn misconfiguration(
    rt: &Runtime,
    release: &Release,
    stage: usize,
) -> Option<(Option<String>, String)> {
    let spec = &release.pipeline.environments[stage];
    for (site, plugin, params) in release.pipeline.param_sites() {
        let (gate, kind) = match site {
            ParamSite::Gate { env, gate } if env == stage => {
                (Some(spec.gates[gate].name.as_str()), PluginKind::Gate)
            }
            ParamSite::Adapter { env } if env == stage => (None, PluginKind::Adapter),
            _ => continue,
        };
        let who = match gate {
            Some(g) => format!("gate {g}"),
            None => "the adapter".to_string(),
        };
        let (problem, fix) = match rt.plugins.refusal(kind, plugin, params).await {
            Ok(None) | Err(Unasked::Predates(_)) => continue,
            Ok(Some((_, problem))) => (
                format!("{who} (plugin {plugin}) refuses {problem}"),
                "fix the pipeline (`gatehouse pipeline check` shows where)",
            ),
            Err(Unasked::NotInstalled(why)) => (
                format!("{who}: {why}"),
                "push the plugin or fix the pipeline (`gatehouse pipeline check`)",
            ),
        };
        return Some((
            gate.map(str::to_string),
            format!(
                "the pipeline is misconfigured in {}: {problem}; {fix}, then submit again",
                spec.name
            ),
        ));
    }
    None
}

async fn run_gates(
    rt: &Arc<Runtime>,
    release: &Release,
    stage: usize,
) -> Result<Release, store::Error> {
    let env = release.environment(stage).to_string();
    let spec = &release.pipeline.environments[stage];
    if let Some((gate, reason)) = misconfiguration(rt, release, stage).await {
        let failed = decide(release, Event::Misconfigured { gate, reason })?;
        return advance(rt, release, failed, |_, _| Ok(())).await;
    }
    let candidate_bytes = rt.store.candidate(&release.candidate)?.unwrap_or_default();
    let candidate = CandidateView {
        digest: release.candidate,
        bytes: Arc::new(candidate_bytes),
        metadata: release
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let live = rt.configstore.get(&env).ok();
    let incumbent_release = live
        .as_ref()
        .and_then(|l| l.state.active.as_ref())
        .map(|active| rt.store.release(active.release))
        .transpose()?
        .flatten();
    let incumbent = live.and_then(|l| {
        let active = l.state.active.as_ref()?;
        Some(CandidateView {
            digest: active.digest,
            bytes: l.active_bytes.clone()?,
            metadata: Vec::new(),
        })
    });
    let attachments = Arc::new(Attachments {
        candidate: attached_files(rt, release)?,
        incumbent: match &incumbent_release {
            Some(r) => attached_files(rt, r)?,
            None => Default::default(),
        },
    });

    // Every plugin call slot may be taken by other releases' calls: then
    // this stage's calls wait in order of arrival, and the log says so.
    let free = rt.plugins.free_gate_slots();
    if free < spec.gates.len() {
        let message = format!(
            "release {} waits in {env} for gate call slots: {free} free, {} gates to run",
            release.id,
            spec.gates.len()
        );
        rt.store
            .commit(|tx| {
                tx.append(
                    Draft::new(EventKind::ReleaseWaiting, DAEMON, message.clone())
                        .release(release.id.0, release.phase.name())
                        .environment(&env)
                        .detail(serde_json::json!({
                            "waiting_for": "gate_slots",
                            "free": free,
                            "needed": spec.gates.len(),
                        })),
                )
            })
            .await?;
    }

    // Gates of a stage are independent: run them side by side.
    let mut calls = Vec::with_capacity(spec.gates.len());
    for gate in &spec.gates {
        let rt = rt.clone();
        let gate = gate.clone();
        let input = GateInput {
            candidate: candidate.clone(),
            incumbent: incumbent.clone(),
            stage: env.clone(),
            params: gate.params.clone(),
            attachments: attachments.clone(),
        };
        let span = tracing::info_span!("gate", stage = %env, gate = %gate.name);
        calls.push(tokio::spawn(
            async move {
            let started = Instant::now();
            // The version active now judges, to the end of this call, even
            // if another is activated meanwhile.
            let plugin = rt.plugins.gate(&gate.plugin);
            let limits = Limits {
                timeout: gate.timeout,
                fuel: gate.fuel,
                memory: CALL_MEMORY_LIMIT,
            };
            let result = match &plugin {
                Err(e) => Err(e.clone()),
                Ok(p) => rt.plugins.evaluate(p, &input, limits).await,
            };
            let duration_us = started.elapsed().as_micros() as u64;
            let plugin_digest = plugin.as_ref().ok().map(|p| p.digest);
            if let Ok(p) = &plugin {
                // The verdict itself is logged once it is committed
                // (`telemetry::log`); this is the call's cost.
                let outcome = match &result {
                    Ok(v) => v.outcome.to_string(),
                    Err(_) => "error".to_string(),
                };
                tracing::debug!(plugin_digest = %p.digest.short(), duration_us, outcome, "gate evaluated");
            }
            match result {
                Ok(v) => GateRecord {
                    gate: gate.name,
                    plugin: gate.plugin,
                    plugin_digest,
                    outcome: v.outcome,
                    score: v.score,
                    measurements: v.measurements,
                    reason: v.reason,
                    blocking: gate.blocking,
                    duration_us,
                    fuel_used: Some(v.fuel_used),
                    failure: None,
                },
                Err(e) => GateRecord {
                    reason: format!("plugin {} {e}", gate.plugin),
                    failure: Some(e.kind().to_string()),
                    gate: gate.name,
                    plugin: gate.plugin,
                    plugin_digest,
                    outcome: Outcome::Fail,
                    score: 0.0,
                    measurements: Vec::new(),
                    blocking: gate.blocking,
                    duration_us,
                    fuel_used: None,
                },
            }
        }
            .instrument(span),
        ));
    }
    let mut records = Vec::with_capacity(calls.len());
    for call in calls {
        match call.await {
            Ok(r) => records.push(r),
            Err(e) => {
                // A panic inside the host while judging; fail closed.
                records.push(GateRecord {
                    gate: "?".into(),
                    plugin: "?".into(),
                    plugin_digest: None,
                    outcome: Outcome::Fail,
                    score: 0.0,
                    measurements: Vec::new(),
                    reason: format!("the gate call did not complete: {e}"),
                    blocking: true,
                    duration_us: 0,
                    fuel_used: None,
                    failure: Some("host_panic".into()),
                })
            }
        }
    }

    let next = decide(release, Event::GatesJudged { records: &records })?;
    advance(rt, release, next, |tx, r| {
        r.stages[stage].gates = records.clone();
        for g in &records {
            let message = format!("{env}: gate {} → {}: {}", g.gate, g.outcome, g.reason);
            tx.append(
                Draft::new(EventKind::GateVerdict, DAEMON, message)
                    .release(r.id.0, PhaseName::Gating)
                    .environment(&env)
                    .detail(serde_json::to_value(g).unwrap_or_default()),
            )?;
        }
        Ok(())
    })
    .await
}

/// The files attached to `release`'s submission, by name.
fn attached_files(
    rt: &Runtime,
    release: &Release,
) -> Result<crate::plugins::capabilities::attachments::Files, store::Error> {
    let mut files = std::collections::BTreeMap::new();
    for a in &release.attachments {
        // Stored before the release that names it; a file gone missing
        // reads as absent, and the gate that needs it says so.
        if let Some(bytes) = rt.store.attachment(&a.digest)? {
            files.insert(a.name.clone(), Arc::new(bytes));
        }
    }
    Ok(files)
}
