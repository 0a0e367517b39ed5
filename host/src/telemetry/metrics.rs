//! The daemon's figures in Prometheus' text exposition format, for
//! `GET /metrics`: releases by pipeline and phase, release outcomes, gate
//! verdicts with their duration and fuel, gate calls that gave no verdict,
//! rollbacks by cause and the time from the judgement that found a
//! regression to the restored configuration, canary judgements by
//! decision, each running canary's step, weight, samples and judged values
//! per arm, observations reported, drift per environment, DORA figures per
//! environment over the last 30 days, the audit log's length and whether
//! its chain verifies, config watchers and build information.
//!
//! Rules: every count comes from the audit log, the one record of what
//! happened: the log is read once at start and then followed on the bus,
//! so counters carry over a restart and agree with `gatehouse audit
//! export`. Labels are bounded (pipelines, phases, gates, environments,
//! outcomes, causes), never a release id or a digest, except on the info
//! series. Written with the `prometheus` crate, whose text encoder writes
//! the classic format that `promtool check metrics` and every Prometheus
//! read.

use crate::canary::live::RunningCanary;
use crate::ids::{DAEMON, PhaseName};
use crate::pipeline::release::ReleaseReads;
use crate::store::Store;
use crate::store::audit::{AuditEvent, EventKind, Verification};
use crate::telemetry::dora::{self, Dora, Window};
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::collections::HashMap;
use std::sync::Mutex;

/// The figures, updated from audit events.
pub struct Metrics {
    registry: Registry,
    releases: IntGaugeVec,
    outcomes: IntCounterVec,
    verdicts: IntCounterVec,
    gate_seconds: HistogramVec,
    gate_fuel: HistogramVec,
    no_verdict: IntCounterVec,
    rollbacks: IntCounterVec,
    audit_events: IntGauge,
    leader: IntGauge,
    watchers: IntGaugeVec,
    judgements: IntCounterVec,
    canary_step: IntGaugeVec,
    canary_weight: IntGaugeVec,
    canary_samples: IntGaugeVec,
    canary_value: GaugeVec,
    rollback_seconds: HistogramVec,
    observations: IntCounterVec,
    drifted: IntGaugeVec,
    audit_intact: IntGauge,
    dora: GaugeVec,
    given_up: IntCounterVec,
    adapter_failures: IntCounterVec,
    /// Each release's pipeline and latest phase, for the releases gauge.
    phases: Mutex<HashMap<u64, (String, PhaseName)>>,
}

#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct Error(#[from] prometheus::Error);

impl Metrics {
    pub fn new(version: &str, wasmtime: &str) -> Result<Metrics, Error> {
        let registry = Registry::new_custom(Some("gatehouse".into()), None)?;
        let releases = IntGaugeVec::new(
            Opts::new("releases", "Releases by pipeline and current phase."),
            &["pipeline", "phase"],
        )?;
        let outcomes = IntCounterVec::new(
            Opts::new(
                "release_outcomes_total",
                "Releases that ended, by pipeline and how they ended.",
            ),
            &["pipeline", "outcome"],
        )?;
        let verdicts = IntCounterVec::new(
            Opts::new("gate_verdicts_total", "Gate verdicts by gate and outcome."),
            &["gate", "outcome"],
        )?;
        let gate_seconds = HistogramVec::new(
            HistogramOpts::new("gate_duration_seconds", "Time a gate call took.")
                .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
            &["gate"],
        )?;
        let gate_fuel = HistogramVec::new(
            HistogramOpts::new(
                "gate_fuel_instructions",
                "WebAssembly instructions a gate's evaluation used.",
            )
            .buckets(prometheus::exponential_buckets(1e4, 10.0, 8)?),
            &["gate"],
        )?;
        let no_verdict = IntCounterVec::new(
            Opts::new(
                "gate_calls_without_verdict_total",
                "Gate calls that gave no verdict and so failed closed, by gate and reason (timeout, fuel_exhausted, out_of_memory, stack_overflow, trap, host_call, plugin_error, malformed_verdict, not_installed, instantiate, busy, ...).",
            ),
            &["gate", "reason"],
        )?;
        let rollbacks = IntCounterVec::new(
            Opts::new(
                "rollbacks_total",
                "Rollbacks by environment and cause (automatic: the canary judge or the watch after promotion; operator).",
            ),
            &["environment", "cause"],
        )?;
        let audit_events = IntGauge::new("audit_events", "Events in the audit log.")?;
        let leader = IntGauge::new(
            "leader",
            "1 while this daemon leads the daemons sharing its store (runs releases, canary judges, drift checks, notifications; a daemon with a store of its own always leads), 0 while it follows (serves reads, refuses writes with UNAVAILABLE).",
        )?;
        let watchers = IntGaugeVec::new(
            Opts::new(
                "config_watchers",
                "Services following an environment's configuration now.",
            ),
            &["environment"],
        )?;
        let judgements = IntCounterVec::new(
            Opts::new(
                "canary_judgements_total",
                "Canary judgements that moved a release (a step passed, extended, paused or rolled back), by environment and decision.",
            ),
            &["environment", "decision"],
        )?;
        let canary_step = IntGaugeVec::new(
            Opts::new("canary_step", "The running canary's step, counted from 1."),
            &["environment"],
        )?;
        let canary_weight = IntGaugeVec::new(
            Opts::new(
                "canary_weight_percent",
                "The share of requests the running canary gets.",
            ),
            &["environment"],
        )?;
        let canary_samples = IntGaugeVec::new(
            Opts::new(
                "canary_samples",
                "Observations each arm of the running canary has reported at its latest look.",
            ),
            &["environment", "arm"],
        )?;
        let canary_value = GaugeVec::new(
            Opts::new(
                "canary_metric_value",
                "What the latest look judged per metric and arm: error rate, latency (ms) mean, centre, p95 and p99, cost, divergence.",
            ),
            &["environment", "metric", "arm"],
        )?;
        let rollback_seconds = HistogramVec::new(
            HistogramOpts::new(
                "rollback_seconds",
                "From the judgement that found a regression to the restored configuration committed, for rollbacks the daemon made on its own.",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            &["environment"],
        )?;
        let observations = IntCounterVec::new(
            Opts::new(
                "canary_observations_total",
                "Observations serving services reported, by environment and what became of them (accepted, dropped for want of a matching canary, rejected).",
            ),
            &["environment", "result"],
        )?;
        let drifted = IntGaugeVec::new(
            Opts::new(
                "environment_drifted",
                "1 while the environment's adapter reads back something other than what Gatehouse made live.",
            ),
            &["environment"],
        )?;
        let audit_intact = IntGauge::new(
            "audit_chain_intact",
            "1 when the audit log's hash chain verified at its last check, 0 when it did not.",
        )?;
        let dora = GaugeVec::new(
            Opts::new(
                "dora",
                "DORA figures per environment over the last 30 days, from the audit log: deployments_per_day, lead_time_median_seconds, lead_time_p90_seconds, change_failure_ratio, recovery_median_seconds (absent where there is nothing to measure).",
            ),
            &["environment", "figure"],
        )?;
        let given_up = IntCounterVec::new(
            Opts::new(
                "notifications_given_up_total",
                "Notifications a receiver gave up on after retrying past its give_up_after_s, by receiver.",
            ),
            &["notify"],
        )?;
        let adapter_failures = IntCounterVec::new(
            Opts::new(
                "adapter_call_failures_total",
                "Adapter call attempts that failed (each is retried, then fails its step closed), by adapter and reason (timeout, fuel_exhausted, out_of_memory, trap, host_call, adapter_failed, malformed_answer, not_installed, busy, ...), since the daemon started.",
            ),
            &["adapter", "reason"],
        )?;
        let build = IntGaugeVec::new(
            Opts::new("build_info", "The daemon's version and its wasmtime."),
            &["version", "wasmtime"],
        )?;
        build.with_label_values(&[version, wasmtime]).set(1);
        registry.register(Box::new(releases.clone()))?;
        registry.register(Box::new(outcomes.clone()))?;
        registry.register(Box::new(verdicts.clone()))?;
        registry.register(Box::new(gate_seconds.clone()))?;
        registry.register(Box::new(gate_fuel.clone()))?;
        registry.register(Box::new(no_verdict.clone()))?;
        registry.register(Box::new(rollbacks.clone()))?;
        registry.register(Box::new(audit_events.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(watchers.clone()))?;
        registry.register(Box::new(judgements.clone()))?;
        registry.register(Box::new(canary_step.clone()))?;
        registry.register(Box::new(canary_weight.clone()))?;
        registry.register(Box::new(canary_samples.clone()))?;
        registry.register(Box::new(canary_value.clone()))?;
        registry.register(Box::new(rollback_seconds.clone()))?;
        registry.register(Box::new(observations.clone()))?;
        registry.register(Box::new(drifted.clone()))?;
        registry.register(Box::new(audit_intact.clone()))?;
        registry.register(Box::new(dora.clone()))?;
        registry.register(Box::new(given_up.clone()))?;
        registry.register(Box::new(adapter_failures.clone()))?;
        registry.register(Box::new(build))?;
        Ok(Metrics {
            registry,
            releases,
            outcomes,
            verdicts,
            gate_seconds,
            gate_fuel,
            no_verdict,
            rollbacks,
            audit_events,
            leader,
            watchers,
            judgements,
            canary_step,
            canary_weight,
            canary_samples,
            canary_value,
            rollback_seconds,
            observations,
            drifted,
            audit_intact,
            dora,
            given_up,
            adapter_failures,
            phases: Mutex::new(HashMap::new()),
        })
    }

    /// Counts what one audit event says. `store` names a release's
    /// pipeline the first time the release is seen.
    pub fn observe(&self, e: &AuditEvent, store: &Store) {
        self.audit_events
            .set(i64::try_from(e.seq).unwrap_or(i64::MAX));
        if let (Some(id), Some(phase)) = (e.release, e.phase) {
            self.release_phase(id, phase, store);
        }
        match e.kind {
            EventKind::GateVerdict => self.verdict(e),
            EventKind::ReleasePhase if e.detail.get("canary").is_some() => self.judgement(e),
            EventKind::EnvRolledBack => {
                // The daemon rolls back on its own (the canary's judge, the
                // watch after promotion); anyone else is an operator.
                let cause = match e.actor == DAEMON {
                    true => "automatic",
                    false => "operator",
                };
                let env = e.environment.as_deref().unwrap_or_default();
                self.rollbacks.with_label_values(&[env, cause]).inc();
                if let Some(judged_ms) = e.detail["canary"]["at_ms"].as_i64() {
                    let seconds = (e.at_ms - judged_ms).max(0) as f64 / 1e3;
                    self.rollback_seconds
                        .with_label_values(&[env])
                        .observe(seconds);
                }
            }
            EventKind::NotifyGaveUp => {
                if let Some(name) = e.detail["notify"].as_str() {
                    self.given_up.with_label_values(&[name]).inc();
                }
            }
            _ => {}
        }
    }

    fn release_phase(&self, id: u64, phase: PhaseName, store: &Store) {
        let mut phases = self.phases.lock().unwrap_or_else(|p| p.into_inner());
        let (pipeline, before) = match phases.get(&id) {
            Some((pipeline, before)) => (pipeline.clone(), Some(*before)),
            None => {
                let pipeline = store
                    .release(crate::ids::ReleaseId(id))
                    .ok()
                    .flatten()
                    .map(|r| r.pipeline.name)
                    .unwrap_or_default();
                (pipeline, None)
            }
        };
        if let Some(before) = before {
            if before == phase {
                return;
            }
            self.releases
                .with_label_values(&[&pipeline, phase_label(before)])
                .dec();
        }
        self.releases
            .with_label_values(&[&pipeline, phase_label(phase)])
            .inc();
        let ended = matches!(
            phase,
            PhaseName::Succeeded | PhaseName::Failed | PhaseName::RolledBack | PhaseName::Aborted
        );
        if ended {
            self.outcomes
                .with_label_values(&[&pipeline, phase_label(phase)])
                .inc();
        }
        phases.insert(id, (pipeline, phase));
    }

    fn verdict(&self, e: &AuditEvent) {
        let text = |key: &str| e.detail.get(key).and_then(|v| v.as_str()).unwrap_or("?");
        let gate = text("gate");
        self.verdicts
            .with_label_values(&[gate, text("outcome")])
            .inc();
        if let Some(us) = e.detail.get("duration_us").and_then(|v| v.as_u64()) {
            self.gate_seconds
                .with_label_values(&[gate])
                .observe(us as f64 / 1e6);
        }
        match e.detail.get("fuel_used").and_then(|v| v.as_u64()) {
            Some(fuel) => self
                .gate_fuel
                .with_label_values(&[gate])
                .observe(fuel as f64),
            None => {
                // Records from before the failure was kept say `unknown`.
                let reason = e.detail["failure"].as_str().unwrap_or("unknown");
                self.no_verdict.with_label_values(&[gate, reason]).inc()
            }
        }
    }

    fn judgement(&self, e: &AuditEvent) {
        let canary = &e.detail["canary"];
        let env = canary["environment"].as_str().unwrap_or_default();
        if let Some(decision) = canary["judgement"]["decision"]["kind"].as_str() {
            self.judgements.with_label_values(&[env, decision]).inc();
        }
    }

    /// Counts what became of a batch of observations for `environment`
    /// (a configured one: names a client sends are not labels).
    pub fn reported(&self, environment: &str, accepted: u64, dropped: u64, rejected: u64) {
        for (result, n) in [
            ("accepted", accepted),
            ("dropped", dropped),
            ("rejected", rejected),
        ] {
            if n > 0 {
                self.observations
                    .with_label_values(&[environment, result])
                    .inc_by(n);
            }
        }
    }

    /// Sets the DORA gauges from `figures`, one environment's.
    pub fn dora(&self, figures: &Dora) {
        let env = figures.environment.as_str();
        let seconds = |ms: Option<i64>| ms.map(|ms| ms as f64 / 1e3);
        for (figure, value) in [
            ("deployments_per_day", Some(figures.deployments_per_day)),
            (
                "lead_time_median_seconds",
                seconds(figures.lead_time_median_ms),
            ),
            ("lead_time_p90_seconds", seconds(figures.lead_time_p90_ms)),
            ("change_failure_ratio", figures.change_failure_rate),
            (
                "recovery_median_seconds",
                seconds(figures.recovery_median_ms),
            ),
        ] {
            match value {
                Some(v) => self.dora.with_label_values(&[env, figure]).set(v),
                None => {
                    let _ = self.dora.remove_label_values(&[env, figure]);
                }
            }
        }
    }

    /// Adds figures kept elsewhere (the notification receivers') to the
    /// exposition.
    pub fn register(&self, c: Box<dyn prometheus::core::Collector>) -> Result<(), Error> {
        Ok(self.registry.register(c)?)
    }

    /// Whether the audit chain verified at its last check.
    pub fn audit_verified(&self, intact: bool) {
        self.audit_intact.set(i64::from(intact));
    }

    /// The exposition, with the gauges read at scrape time set first:
    /// watchers per environment, and the canaries running now (series of
    /// a canary that ended are gone).
    pub fn render(&self, now: &Now) -> Result<String, Error> {
        let Now {
            watchers,
            canaries,
            drifted,
            adapter_failures,
            leader,
        } = now;
        self.leader.set(i64::from(*leader));
        for ((adapter, reason), n) in adapter_failures {
            let c = self
                .adapter_failures
                .with_label_values(&[adapter.as_str(), reason]);
            c.inc_by(n.saturating_sub(c.get()));
        }
        for (env, is) in drifted {
            self.drifted.with_label_values(&[env]).set(i64::from(*is));
        }
        self.canary_step.reset();
        self.canary_weight.reset();
        self.canary_samples.reset();
        self.canary_value.reset();
        for c in canaries {
            let env = c.position.environment.as_str();
            let step = i64::try_from(c.position.step + 1).unwrap_or(i64::MAX);
            self.canary_step.with_label_values(&[env]).set(step);
            self.canary_weight
                .with_label_values(&[env])
                .set(i64::from(c.position.weight_percent));
            let Some(latest) = c.latest() else { continue };
            let j = &latest.judgement;
            for (arm, n) in [("baseline", j.baseline_n), ("canary", j.canary_n)] {
                self.canary_samples
                    .with_label_values(&[env, arm])
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            for m in &j.metrics {
                for (arm, v) in [("baseline", m.baseline), ("canary", m.canary)] {
                    if let Some(v) = v.filter(|v| v.is_finite()) {
                        self.canary_value
                            .with_label_values(&[env, m.metric.name(), arm])
                            .set(v);
                    }
                }
            }
        }
        for (env, n) in watchers {
            self.watchers
                .with_label_values(&[env])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        Ok(TextEncoder::new().encode_to_string(&self.registry.gather())?)
    }
}

/// What `/metrics` reads of the daemon at scrape time.
pub struct Now {
    /// Whether this daemon leads.
    pub leader: bool,
    /// Services following each environment.
    pub watchers: Vec<(String, usize)>,
    pub canaries: Vec<std::sync::Arc<RunningCanary>>,
    /// Whether each environment is drifted now.
    pub drifted: Vec<(String, bool)>,
    /// Failed adapter attempts since start, by adapter and kind.
    pub adapter_failures: Vec<((String, &'static str), u64)>,
}

fn phase_label(p: PhaseName) -> &'static str {
    match p {
        PhaseName::Pending => "pending",
        PhaseName::Gating => "gating",
        PhaseName::AwaitingApproval => "awaiting_approval",
        PhaseName::Applying => "applying",
        PhaseName::Canary => "canary",
        PhaseName::Promoted => "promoted",
        PhaseName::Succeeded => "succeeded",
        PhaseName::Failed => "failed",
        PhaseName::RolledBack => "rolled_back",
        PhaseName::Aborted => "aborted",
    }
}

/// Whether `e` changes a DORA figure: a deployment, a rollback, or a
/// release's end.
fn moves_dora(e: &AuditEvent) -> bool {
    matches!(e.kind, EventKind::EnvApplied | EventKind::EnvRolledBack)
        || matches!(
            e.phase,
            Some(PhaseName::Succeeded | PhaseName::Failed | PhaseName::RolledBack)
        )
}

/// Recomputes every environment's DORA figures from the whole log, off the
/// reactor (it reads every event).
async fn refresh_dora(metrics: &std::sync::Arc<Metrics>, store: &Store) {
    let (m, s) = (metrics.clone(), store.clone());
    let done = tokio::task::spawn_blocking(move || {
        let events: Vec<AuditEvent> = match s.events_from(1).collect() {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "metrics cannot read the audit log for DORA");
                return;
            }
        };
        let envs: std::collections::BTreeSet<&str> = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::EnvApplied | EventKind::EnvRolledBack))
            .filter_map(|e| e.environment.as_deref())
            .collect();
        let now = crate::store::now_ms();
        for env in envs {
            m.dora(&dora::figures(&events, &Window::last_days(env, 30, now)));
        }
    });
    let _ = done.await;
}

/// Reads the audit log into `metrics`, then follows the bus until the
/// daemon stops. Subscribes first, so an event committed meanwhile is
/// counted once: from the log or from the bus, by its sequence number.
pub fn spawn(
    metrics: std::sync::Arc<Metrics>,
    store: Store,
    mut chain: tokio::sync::watch::Receiver<Option<Verification>>,
    closed: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut bus = store.subscribe();
    tokio::spawn(async move {
        let mut last = 0;
        let catch_up = |last: &mut u64| {
            for e in store.events_from(*last + 1) {
                match e {
                    Ok(e) => {
                        metrics.observe(&e, &store);
                        *last = e.seq;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "metrics cannot read the audit log");
                        break;
                    }
                }
            }
        };
        // Reading the whole log may take a while: off the reactor's turn.
        tokio::task::block_in_place(|| catch_up(&mut last));
        refresh_dora(&metrics, &store).await;
        let verify = async {
            loop {
                let intact = chain
                    .borrow_and_update()
                    .as_ref()
                    .map(|v| matches!(v, Verification::Intact { .. }));
                if let Some(intact) = intact {
                    metrics.audit_verified(intact);
                }
                if chain.changed().await.is_err() {
                    // The walks ended with the daemon; so does this.
                    std::future::pending::<()>().await;
                }
            }
        };
        let follow = async {
            loop {
                match bus.recv().await {
                    Ok(e) if e.seq > last => {
                        // A gap (an event announced before its predecessor
                        // was read) is read from the log.
                        if e.seq > last + 1 {
                            tokio::task::block_in_place(|| catch_up(&mut last));
                        }
                        if e.seq > last {
                            metrics.observe(&e, &store);
                            last = e.seq;
                        }
                        if moves_dora(&e) {
                            refresh_dora(&metrics, &store).await;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        tokio::task::block_in_place(|| catch_up(&mut last))
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        };
        tokio::select! {
            () = follow => {}
            () = verify => {}
            () = closed => {}
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::Draft;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verdicts_and_rollbacks_are_counted_with_bounded_labels_and_pass_the_format() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = Metrics::new("0.1.0", "48").unwrap();
        let verdict = |fuel: serde_json::Value| {
            let failure = fuel.is_null().then_some("timeout");
            Draft::new(EventKind::GateVerdict, DAEMON, "dev: gate lint → pass")
                .release(1, PhaseName::Gating)
                .environment("dev")
                .detail(serde_json::json!({
                    "gate": "lint", "outcome": "pass", "duration_us": 2500, "fuel_used": fuel,
                    "failure": failure
                }))
        };
        for draft in [
            verdict(serde_json::json!(120_000)),
            verdict(serde_json::Value::Null),
            Draft::new(EventKind::ReleasePhase, DAEMON, "rolled back")
                .release(1, PhaseName::RolledBack)
                .environment("prod"),
            Draft::new(EventKind::EnvRolledBack, DAEMON, "prod: canary down")
                .environment("prod")
                .detail(serde_json::json!({ "automatic": true, "canary": { "at_ms": 0 } })),
            Draft::new(EventKind::EnvRolledBack, "alice", "prod: rolled back").environment("prod"),
        ] {
            let e = store.commit(|tx| tx.append(draft.clone())).await.unwrap();
            m.observe(&e, &store);
        }
        let text = m
            .render(&Now {
                leader: true,
                watchers: vec![("prod".into(), 3)],
                canaries: Vec::new(),
                drifted: vec![("prod".into(), true)],
                adapter_failures: vec![(("adapter-http".into(), "timeout"), 2)],
            })
            .unwrap();
        for line in [
            "gatehouse_gate_verdicts_total{gate=\"lint\",outcome=\"pass\"} 2",
            "gatehouse_gate_duration_seconds_count{gate=\"lint\"} 2",
            "gatehouse_gate_fuel_instructions_count{gate=\"lint\"} 1",
            "gatehouse_gate_calls_without_verdict_total{gate=\"lint\",reason=\"timeout\"} 1",
            "gatehouse_rollbacks_total{cause=\"automatic\",environment=\"prod\"} 1",
            "gatehouse_rollbacks_total{cause=\"operator\",environment=\"prod\"} 1",
            "gatehouse_audit_events 5",
            "gatehouse_config_watchers{environment=\"prod\"} 3",
            "gatehouse_environment_drifted{environment=\"prod\"} 1",
            "gatehouse_rollback_seconds_count{environment=\"prod\"} 1",
            "gatehouse_build_info{version=\"0.1.0\",wasmtime=\"48\"} 1",
            "gatehouse_adapter_call_failures_total{adapter=\"adapter-http\",reason=\"timeout\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        // A release seen in one phase and then another counts once, in
        // the latest phase.
        for line in [
            "gatehouse_releases{phase=\"gating\",pipeline=\"\"} 0",
            "gatehouse_releases{phase=\"rolled_back\",pipeline=\"\"} 1",
            "gatehouse_release_outcomes_total{outcome=\"rolled_back\",pipeline=\"\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
    }
}
