//! The canary stage: the candidate runs beside what is live at each step's
//! weight while serving services report observations; the judge looks after
//! every batch (interim: only an anytime-valid regression can stop it) and
//! at the end of each step (final: every test and the score); then the
//! optional watch after full promotion.
//!
//! Rules:
//! - A step is placed with its phase: an adapter plugin is asked first, then
//!   `Canary { stage, step }` and the config store's canary and weight
//!   commit in one transaction, then watchers hear of it.
//! - Windows live in memory (`canary::live`), never in the store, and
//!   nothing is written per observation: after a daemon restart a step
//!   observes again from its start (the resume event says so).
//! - Every final look and every decision is an audit event whose detail
//!   carries the judgement under `canary`: per metric the values, sample
//!   counts, test, statistic, p-value or e-value, threshold and outcome.
//! - Promote: the next step, or after the last the candidate becomes active
//!   (weight 0). Roll back: the canary leaves traffic, the baseline keeps
//!   serving, the release ends RolledBack with the evidence. Undecided
//!   (continue, too few samples, no data): `on_inconclusive` — extend (at
//!   most `max_extensions` times, then roll back: a canary is never
//!   promoted without evidence), pause for an operator (a regression still
//!   rolls it back meanwhile), or fail (roll back).
//! - A canary that names a metric source (`[environment.canary.prometheus]`)
//!   reads it at each step's final look, over the step so far; a source
//!   that keeps failing makes that look inconclusive (see [`source_look`]).
//! - The watch after full promotion is in [`super::watch`]; taking a
//!   canary out of traffic in [`super::takedown`].

use super::takedown::{evidence, publish, take_down, withdraw};
use super::{DAEMON, Note, Runtime, advance, advance_noted, apply_now, decide, wait_for_news};
use crate::canary::live::{Mode, Position, RunningCanary, Snapshot};
use crate::canary::source::{Arms, look};
use crate::canary::{Decision, SourceEvidence};
use crate::configstore::ConfigStore;
use crate::digest::Digest;
use crate::pipeline::definition::{BUILTIN_ADAPTER, CanarySpec, InconclusiveAction};
use crate::pipeline::release::machine::{Event, Step};
use crate::pipeline::release::{CanaryHold, Phase, Release};
use crate::plugins::{AdapterCall, CandidateView};
use crate::store::audit::{Draft, EventKind};
use crate::store::{self, Refusal, now_ms};
use std::sync::{Arc, Mutex};

/// Whether `env` runs something a canary of `candidate` can be compared
/// with; if not, why the canary is skipped.
pub(super) fn baseline(rt: &Runtime, env: &str, candidate: Digest) -> Result<(), String> {
    let live = rt.configstore.get(env).map_err(|e| e.to_string())?;
    match &live.state.active {
        None => Err(format!("nothing is live in {env} to compare against")),
        Some(a) if a.digest == candidate => {
            Err(format!("{} is already live in {env}", candidate.short()))
        }
        Some(_) => Ok(()),
    }
}

/// Places the candidate at `step`'s weight and commits `Canary { stage,
/// step }` with it.
pub(super) async fn enter(
    rt: &Runtime,
    release: &Release,
    stage: usize,
    step: usize,
    note: Option<Note>,
) -> Result<Release, store::Error> {
    let env = release.environment(stage).to_string();
    let spec = &release.pipeline.environments[stage];
    let step_ms = release
        .canary_spec(stage)
        .map_or(0, |c| c.step_duration().as_millis() as u64);
    let Some(weight) = release
        .canary_spec(stage)
        .and_then(|c| c.steps.get(step).copied())
    else {
        let reason = format!("{env} has no canary step {}", step + 1);
        return fail(rt, release, reason).await;
    };
    let mut effect = None;
    if spec.adapter != BUILTIN_ADAPTER {
        let call = AdapterCall::SetTraffic {
            environment: env.clone(),
            params: spec.adapter_params.clone(),
            canary: candidate_view(rt, release.candidate)?,
            weight_percent: weight.min(100) as u8,
        };
        match rt
            .adapters
            .call(&spec.adapter, spec.adapter_timeout, call)
            .await
        {
            Ok(done) => effect = Some(done),
            Err(e) => {
                let reason = format!(
                    "adapter {} could not send {weight}% of {env}'s traffic to {}: {e}",
                    spec.adapter,
                    release.candidate.short()
                );
                return if step == 0 {
                    fail(rt, release, reason).await
                } else {
                    take_down(rt, release, stage, None, reason).await
                };
            }
        }
    }
    let placed = Mutex::new(None);
    // The first step is placed from `Applying`; each next one follows the
    // step before it, which passed.
    let next = match release.phase {
        Phase::Applying { .. } => decide(release, Event::Placed { canary: true })?,
        _ => decide(release, Event::StepJudged(Step::Passed))?,
    };
    debug_assert!(matches!(next, Phase::Canary { step: s, .. } if s == step));
    let committed = advance_noted(rt, release, next, note, |tx, r| {
        let state = ConfigStore::place_canary_in(tx, &env, r.candidate, r.id, weight)?;
        if let Some(state) = &state {
            tx.append(
                Draft::new(
                    EventKind::EnvApplied,
                    DAEMON,
                    format!(
                        "{env}: canary {} gets {weight}% of traffic (generation {})",
                        r.candidate.short(),
                        state.generation
                    ),
                )
                .release(r.id.0, r.phase.name())
                .environment(&env)
                .detail(serde_json::json!({
                    "digest": r.candidate,
                    "weight_percent": weight,
                    "step": step,
                    "step_ms": step_ms,
                    "generation": state.generation,
                    "adapter": spec.adapter,
                })),
            )?;
        }
        *lock(&placed) = state;
        Ok(())
    })
    .await;
    match committed {
        Ok(r) => {
            rt.adapters.settle(effect).await;
            // Ready for observations before any service hears of the step.
            // (Settings that cannot be used are reported by `run`.)
            if let Some(spec) = r.canary_spec(stage) {
                let _ = open_step(rt, &r, stage, step, spec);
            }
            publish(rt, placed);
            Ok(r)
        }
        // What was live went away since it was checked: nothing to compare.
        // The release lets go first, so the traffic it set is repaired.
        Err(store::Error::Refused(Refusal::Precondition(why))) => {
            let failed = fail(rt, release, why).await;
            rt.adapters.settle(effect).await;
            failed
        }
        Err(e) => {
            rt.adapters.settle(effect).await;
            Err(e)
        }
    }
}

/// One turn of a canary step: wait for a regression, the end of the step,
/// or news about the release (an approval, an abort).
pub(super) async fn run(
    rt: &Runtime,
    release: &Release,
    stage: usize,
    step: usize,
    extensions: u32,
    hold: CanaryHold,
) -> Result<Release, store::Error> {
    let env = release.environment(stage).to_string();
    let Some(spec) = release.canary_spec(stage).cloned() else {
        let reason = format!("the pipeline this release runs has no canary for {env}");
        return fail(rt, release, reason).await;
    };
    if spec.steps.get(step).is_none() {
        let reason = format!("{env} has no canary step {}", step + 1);
        return take_down(rt, release, stage, None, reason).await;
    }
    let running = match open_step(rt, release, stage, step, &spec) {
        Ok(r) => r,
        Err(e) => {
            let reason = format!("the canary settings cannot be used: {e}");
            return take_down(rt, release, stage, None, reason).await;
        }
    };
    if let Some(fired) = running.fired() {
        return take_down(rt, release, stage, Some(fired), String::new()).await;
    }
    if hold == CanaryHold::Approved {
        let judged = match running.latest() {
            Some(s) => s,
            None => match running.look_final().await {
                Ok(s) => s,
                Err(e) => return take_down(rt, release, stage, None, e).await,
            },
        };
        return promote(rt, release, stage, step, &spec, &running, judged, true).await;
    }
    let observing = hold == CanaryHold::Observing;
    tokio::select! {
        biased;
        fired = running.triggered() => {
            take_down(rt, release, stage, Some(fired), String::new()).await
        }
        _ = tokio::time::sleep_until(running.deadline()), if observing => {
            step_end(rt, release, stage, step, extensions, &spec, &running).await
        }
        _ = wait_for_news(rt, release.id) => Ok(release.clone()),
    }
}

/// The running canary of a step, started if it is not running yet.
fn open_step(
    rt: &Runtime,
    release: &Release,
    stage: usize,
    step: usize,
    spec: &CanarySpec,
) -> Result<Arc<RunningCanary>, crate::canary::Error> {
    let position = Position {
        release: release.id.0,
        environment: release.environment(stage).to_string(),
        stage,
        step,
        weight_percent: spec.steps.get(step).copied().unwrap_or(0),
        mode: Mode::Step,
    };
    let config = spec.judge_config()?;
    Ok(rt
        .board
        .open(position, config, None, spec.step_duration())
        .0)
}

/// The final look of a step, and what it decides.
async fn step_end(
    rt: &Runtime,
    release: &Release,
    stage: usize,
    step: usize,
    extensions: u32,
    spec: &CanarySpec,
    running: &RunningCanary,
) -> Result<Release, store::Error> {
    let source = source_look(rt, release, stage, spec, running).await;
    let judged = match running.look_final_with(source).await {
        Ok(s) => s,
        Err(e) => return take_down(rt, release, stage, None, e).await,
    };
    // An interim look may have fired while the final one ran: it wins.
    if let Some(fired) = running.fired() {
        return take_down(rt, release, stage, Some(fired), String::new()).await;
    }
    let action = match judged.judgement.decision {
        Decision::Promote => {
            return promote(rt, release, stage, step, spec, running, judged, false).await;
        }
        Decision::RollBack => {
            return take_down(rt, release, stage, Some(judged), String::new()).await;
        }
        // The judge's own rule asked for more data.
        Decision::Continue => InconclusiveAction::Extend,
        Decision::Inconclusive { .. } => spec.on_inconclusive,
    };
    let env = release.environment(stage);
    let weight = running.position.weight_percent;
    let unfed = judged.judgement.baseline_n == 0 && judged.judgement.canary_n == 0;
    let reason = if unfed && spec.prometheus.is_none() {
        // Name how long nothing came: a canary nobody feeds is a set-up
        // problem, not a candidate's.
        let waited = spec.step_duration() * (extensions + 1);
        let waited = if waited.subsec_millis() == 0 {
            format!("{} s", waited.as_secs())
        } else {
            format!("{} ms", waited.as_millis())
        };
        format!(
            "no service has reported observations for {env} in {waited}; {}; need {} samples per arm",
            crate::canary::judgement::REPORT_HINT,
            spec.min_samples
        )
    } else {
        judged.judgement.reason.clone()
    };
    match action {
        InconclusiveAction::Extend if extensions < spec.max_extensions => {
            let note = Note {
                message: format!(
                    "{env}: canary at {weight}% undecided: {reason}; observing another {:?} (extension {} of {})",
                    spec.step_duration(),
                    extensions + 1,
                    spec.max_extensions
                ),
                detail: evidence(Some(&judged)),
            };
            let next = decide(release, Event::StepJudged(Step::Extended))?;
            let r = advance_noted(rt, release, next, Some(note), |_, _| Ok(())).await?;
            running.extend(spec.step_duration());
            Ok(r)
        }
        InconclusiveAction::Extend => {
            let why = format!(
                "still undecided after {} extension(s): {reason}; a canary is never promoted without evidence",
                spec.max_extensions
            );
            take_down(rt, release, stage, Some(judged), why).await
        }
        InconclusiveAction::Pause => {
            let note = Note {
                message: format!(
                    "{env}: canary paused at {weight}%: {reason}; `gatehouse approve {} --env {env}` promotes this step, `gatehouse rollback {env}` ends it, and a regression still rolls it back",
                    release.id
                ),
                detail: evidence(Some(&judged)),
            };
            let next = decide(release, Event::StepJudged(Step::Paused))?;
            advance_noted(rt, release, next, Some(note), |_, _| Ok(())).await
        }
        InconclusiveAction::Fail => {
            let why = format!("undecided, and on_inconclusive is fail: {reason}");
            take_down(rt, release, stage, Some(judged), why).await
        }
    }
}

/// What the step's metric source reports over the step so far, if it names
/// one. While its queries fail for a reason that may pass (no connection, a
/// timeout, a 5xx or 429), it looks again one interval later, up to
/// `consecutive_errors` looks; the last one's evidence says how many failed.
async fn source_look(
    rt: &Runtime,
    release: &Release,
    stage: usize,
    spec: &CanarySpec,
    running: &RunningCanary,
) -> Option<SourceEvidence> {
    let source = spec.prometheus.clone()?;
    let environment = release.environment(stage).to_string();
    let baseline_digest = rt
        .configstore
        .get(&environment)
        .ok()
        .and_then(|live| live.state.active.as_ref().map(|a| a.digest.hex()))
        .unwrap_or_default();
    let arms = Arms {
        baseline_digest,
        canary_digest: release.candidate.hex(),
        environment,
        release: release.id.0,
    };
    let alpha = spec.alpha;
    let mut failed = 0;
    loop {
        let (s, a, start) = (source.clone(), arms.clone(), running.opened_ms);
        let looked =
            tokio::task::spawn_blocking(move || look(&s, &a, start, now_ms(), alpha)).await;
        let (mut evidence, transient) = match looked {
            Ok(done) => done,
            Err(e) => {
                let error = format!("the look at the metric source did not complete: {e}");
                let evidence = SourceEvidence {
                    url: source.url.clone(),
                    start_ms: start,
                    end_ms: now_ms(),
                    interval_ms: source.interval().as_millis() as u64,
                    looks_failed: 0,
                    error: Some(error),
                    metrics: Vec::new(),
                };
                (evidence, false)
            }
        };
        let Some(error) = evidence.error.clone() else {
            return Some(evidence);
        };
        failed += 1;
        evidence.looks_failed = failed;
        if !transient || failed >= source.consecutive_errors {
            return Some(evidence);
        }
        tracing::warn!(
            release_id = release.id.0,
            environment = %arms.environment,
            looks_failed = failed,
            consecutive_errors = source.consecutive_errors,
            "the canary's metric source failed; looking again in {:?}: {error}",
            source.interval()
        );
        tokio::time::sleep(source.interval()).await;
    }
}

/// The step passed (or an operator approved it): the next step, or full
/// promotion after the last.
#[allow(clippy::too_many_arguments)]
async fn promote(
    rt: &Runtime,
    release: &Release,
    stage: usize,
    step: usize,
    spec: &CanarySpec,
    running: &RunningCanary,
    judged: Arc<Snapshot>,
    approved: bool,
) -> Result<Release, store::Error> {
    let env = release.environment(stage).to_string();
    let weight = running.position.weight_percent;
    let why = if approved {
        "approved by an operator".to_string()
    } else {
        judged.judgement.reason.clone()
    };
    if let Some(&next_weight) = spec.steps.get(step + 1) {
        let note = Note {
            message: format!(
                "{env}: canary step {} passed at {weight}% ({why}); now {next_weight}%",
                step + 1
            ),
            detail: evidence(Some(&judged)),
        };
        return enter(rt, release, stage, step + 1, Some(note)).await;
    }
    let kept = match spec.watch_duration() {
        Some(_) => Some(running.baseline().await),
        None => None,
    };
    let note = Note {
        message: format!("{env}: promoted after its canary ({why})"),
        detail: evidence(Some(&judged)),
    };
    let r = apply_now(rt, release, stage, Some(note), kept).await?;
    if r.phase.is_terminal() {
        // The adapter could not make it active: take the canary down too.
        withdraw(rt, release, stage).await;
    }
    if kept.is_none() || r.phase.is_terminal() {
        rt.board.end(release.id.0, Some((*judged).clone()));
    }
    Ok(r)
}

async fn fail(rt: &Runtime, release: &Release, reason: String) -> Result<Release, store::Error> {
    let failed = decide(release, Event::EffectFailed { reason })?;
    advance(rt, release, failed, |_, _| Ok(())).await
}

pub(super) fn candidate_view(rt: &Runtime, digest: Digest) -> Result<CandidateView, store::Error> {
    Ok(CandidateView {
        digest,
        bytes: Arc::new(rt.store.candidate(&digest)?.unwrap_or_default()),
        metadata: Vec::new(),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
