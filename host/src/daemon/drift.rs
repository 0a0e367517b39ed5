//! Configuration drift: what an environment's adapter reads back as live,
//! against what Gatehouse last made live there. A hand edit, another tool
//! deploying beside Gatehouse, or a half-finished restore all show up here.
//!
//! Rules: only an environment placed by an adapter plugin can drift; the
//! built-in config store is itself what serves. The adapter asked is the one
//! that placed the live candidate (from the pipeline of the release that
//! made it live) or, before anything was placed, the one a served pipeline
//! names. A difference that is the candidate of the release holding the
//! environment (see `pipeline::holds`), or one seen while the record changed
//! during the check, is reported as changing, not as drift: the adapter acts
//! a moment before the record follows. Any other digest, a canary included,
//! is drift. The audit log gets an event when an environment is first seen
//! drifted and when it is seen back in sync, not on every check.

use super::{Daemon, Error};
use crate::configstore::EnvReads;
use crate::configstore::{EnvState, LiveConfig};
use crate::digest::Digest;
use crate::ids::DAEMON;
use crate::pipeline::definition::{BUILTIN_ADAPTER, Environment};
use crate::pipeline::release::ReleaseReads;
use crate::plugins::{AdapterCall, LiveState};
use crate::store::audit::{Draft, EventKind};
use crate::store::now_ms;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftStatus {
    InSync,
    Drifted,
    Changing,
    Unreadable,
    BuiltIn,
}

/// What is placed in an environment; digests in lowercase hex.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub active: Option<String>,
    pub canary: Option<String>,
    pub canary_weight_percent: u32,
}

impl Placement {
    fn recorded(state: &EnvState) -> Placement {
        Placement {
            active: state.active.as_ref().map(|d| d.digest.hex()),
            canary: state.canary.as_ref().map(|d| d.digest.hex()),
            canary_weight_percent: state.canary_weight_percent,
        }
    }

    fn read_back(live: &LiveState) -> Placement {
        Placement {
            active: live.active.as_deref().map(normalise),
            canary: live.canary.as_deref().map(normalise),
            canary_weight_percent: u32::from(live.canary_weight_percent),
        }
    }
}

/// An adapter may write a digest as `sha256:ABC…`; the record holds `abc…`.
fn normalise(digest: &str) -> String {
    let digest = digest.trim();
    digest
        .strip_prefix("sha256:")
        .unwrap_or(digest)
        .to_ascii_lowercase()
}

/// One environment's check.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    pub environment: String,
    /// The adapter plugin asked, or [`BUILTIN_ADAPTER`].
    pub adapter: String,
    pub status: DriftStatus,
    pub expected: Placement,
    /// What the adapter read back; none when it could not be read.
    pub live: Option<Placement>,
    pub differences: Vec<String>,
    /// The adapter's own account of what it read, or why it could not.
    pub detail: String,
    pub checked_at_ms: i64,
}

/// The differences between what was made live and what is, one sentence
/// each; none when they agree.
pub fn differences(expected: &Placement, live: &Placement) -> Vec<String> {
    let shown = |d: &Option<String>| match d {
        Some(d) => d
            .parse::<Digest>()
            .map(|d| d.short())
            .unwrap_or_else(|_| format!("{d:?}")),
        None => "nothing".to_string(),
    };
    let mut out = Vec::new();
    if expected.active != live.active {
        out.push(format!(
            "active: Gatehouse made {} live, the environment serves {}",
            shown(&expected.active),
            shown(&live.active)
        ));
    }
    if expected.canary != live.canary {
        out.push(format!(
            "canary: Gatehouse runs {} as canary, the environment runs {}",
            shown(&expected.canary),
            shown(&live.canary)
        ));
    }
    if expected.canary_weight_percent != live.canary_weight_percent {
        out.push(format!(
            "canary weight: Gatehouse set {}%, the environment sends {}%",
            expected.canary_weight_percent, live.canary_weight_percent
        ));
    }
    out
}

impl Daemon {
    /// Checks `env`, or every environment when `env` is empty, in name
    /// order. `actor` is who asked, for the audit log.
    pub async fn check_drift(&self, actor: &str, env: &str) -> Result<Vec<DriftReport>, Error> {
        let names = if env.is_empty() {
            self.rt.configstore.names()
        } else {
            // An unknown name is an error that lists the known ones.
            self.rt.configstore.get(env)?;
            vec![env.to_string()]
        };
        let mut reports = Vec::with_capacity(names.len());
        for name in names {
            let report = self.check_one(&name).await?;
            self.record_drift(actor, &report).await?;
            reports.push(report);
        }
        Ok(reports)
    }

    async fn check_one(&self, env: &str) -> Result<DriftReport, Error> {
        let before = self.rt.configstore.get(env)?;
        let expected = Placement::recorded(&before.state);
        let report = |adapter: &str, status, live, differences, detail: String| DriftReport {
            environment: env.to_string(),
            adapter: adapter.to_string(),
            status,
            expected: expected.clone(),
            live,
            differences,
            detail,
            checked_at_ms: now_ms(),
        };
        let Some(spec) = self.adapter_of(&before)? else {
            return Ok(report(
                BUILTIN_ADAPTER,
                DriftStatus::BuiltIn,
                None,
                Vec::new(),
                "served by the built-in config store, which is itself what is live".into(),
            ));
        };
        let call = AdapterCall::Current {
            environment: env.to_string(),
            params: spec.adapter_params.clone(),
        };
        let answer = self
            .rt
            .adapters
            .call(&spec.adapter, spec.adapter_timeout, call)
            .await
            .and_then(|read| {
                read.live
                    .ok_or_else(|| "the adapter gave no live state".to_string())
            });
        let state = match answer {
            Ok(state) => state,
            Err(detail) => {
                return Ok(report(
                    &spec.adapter,
                    DriftStatus::Unreadable,
                    None,
                    Vec::new(),
                    detail,
                ));
            }
        };
        let live = Placement::read_back(&state);
        let found = differences(&expected, &live);
        let status = if found.is_empty() {
            DriftStatus::InSync
        } else if self.rt.configstore.get(env)?.state.generation != before.state.generation
            || self.acting_ahead(env, &expected, &live)?
        {
            DriftStatus::Changing
        } else {
            DriftStatus::Drifted
        };
        Ok(report(
            &spec.adapter,
            status,
            Some(live),
            found,
            state.detail,
        ))
    }

    /// The environment's adapter: the one that placed what is live, else
    /// the one a served pipeline names; none for the built-in store.
    fn adapter_of(&self, live: &LiveConfig) -> Result<Option<Environment>, Error> {
        let spec = match self.placed_by(live)? {
            Some(spec) => Some(spec),
            None => self.pipelines.values().find_map(|p| {
                p.environment(&live.state.name)
                    .map(|(_, spec)| spec.clone())
            }),
        };
        Ok(spec.filter(|s| s.adapter != BUILTIN_ADAPTER))
    }

    /// Whether what differs is the release holding the environment a step
    /// ahead of its record: every live digest that differs from the record
    /// is that release's candidate (it applies, or places or moves its
    /// canary, just before it commits). A canary digest of any other
    /// release, or a hand edit, is drift.
    fn acting_ahead(
        &self,
        env: &str,
        expected: &Placement,
        live: &Placement,
    ) -> Result<bool, Error> {
        let Some(holder) = self.rt.store.environment(env)?.and_then(|s| s.holder) else {
            return Ok(false);
        };
        let Some(release) = self.rt.store.release(holder)? else {
            return Ok(false);
        };
        let candidate = release.candidate.hex();
        let ahead = |recorded: &Option<String>, read: &Option<String>| {
            recorded == read || read.as_deref().is_none_or(|d| d == candidate)
        };
        Ok(ahead(&expected.active, &live.active) && ahead(&expected.canary, &live.canary))
    }

    /// Appends `env.drifted` when an environment is first seen drifted and
    /// `env.in_sync` when it is seen back in sync afterwards. What was seen
    /// is noted before the write, so two checks at once record it once.
    async fn record_drift(&self, actor: &str, report: &DriftReport) -> Result<(), Error> {
        if report.status == DriftStatus::Unreadable {
            tracing::warn!(environment = %report.environment, adapter = %report.adapter, "cannot check for drift: {}", report.detail);
        }
        let kind = {
            let mut seen = self.drifted.lock().unwrap_or_else(|p| p.into_inner());
            let was_drifted = seen.contains(&report.environment);
            match report.status {
                DriftStatus::Drifted if !was_drifted => {
                    seen.insert(report.environment.clone());
                    EventKind::EnvDrifted
                }
                DriftStatus::InSync if was_drifted => {
                    seen.remove(&report.environment);
                    EventKind::EnvInSync
                }
                _ => return Ok(()),
            }
        };
        let env = &report.environment;
        let message = match kind {
            EventKind::EnvDrifted => {
                tracing::warn!(environment = %env, differences = ?report.differences, "configuration drift");
                format!("{env} drifted: {}", report.differences.join("; "))
            }
            _ => {
                tracing::info!(environment = %env, "configuration back in sync");
                format!("{env} serves what Gatehouse made live again")
            }
        };
        let detail = serde_json::to_value(report).unwrap_or_default();
        let recorded = self
            .rt
            .store
            .commit(|tx| {
                tx.append(
                    Draft::new(kind, actor, message.clone())
                        .environment(env)
                        .detail(detail.clone()),
                )?;
                Ok(())
            })
            .await;
        if recorded.is_err() {
            // Not recorded: the next check tries again.
            let mut seen = self.drifted.lock().unwrap_or_else(|p| p.into_inner());
            match kind {
                EventKind::EnvDrifted => seen.remove(env),
                _ => seen.insert(env.clone()),
            };
        }
        Ok(recorded?)
    }
}

/// Checks every environment each `every` until the daemon closes; what a
/// check finds reaches the audit log by [`Daemon::check_drift`]'s rule.
pub(super) fn spawn_checks(daemon: &Arc<Daemon>, every: Duration) {
    let weak = Arc::downgrade(daemon);
    let mut closing = daemon.closing.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = closing.wait_for(|closing| *closing) => return,
            }
            let Some(daemon) = weak.upgrade() else {
                return;
            };
            if let Err(e) = daemon.check_drift(DAEMON, "").await {
                tracing::warn!("drift check failed: {e}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3f2a000000000000000000000000000000000000000000000000000000000001";
    const B: &str = "9b1c000000000000000000000000000000000000000000000000000000000002";

    fn placed(active: Option<&str>, canary: Option<&str>, weight: u32) -> Placement {
        Placement {
            active: active.map(str::to_string),
            canary: canary.map(str::to_string),
            canary_weight_percent: weight,
        }
    }

    #[test]
    fn the_same_placement_has_no_differences() {
        let p = placed(Some(A), Some(B), 10);
        assert!(differences(&p, &p.clone()).is_empty());
    }

    #[test]
    fn each_difference_is_its_own_sentence() {
        let found = differences(&placed(Some(A), None, 0), &placed(Some(B), Some(A), 25));
        assert_eq!(
            found,
            vec![
                "active: Gatehouse made 3f2a00000000 live, the environment serves 9b1c00000000",
                "canary: Gatehouse runs nothing as canary, the environment runs 3f2a00000000",
                "canary weight: Gatehouse set 0%, the environment sends 25%",
            ]
        );
    }

    #[test]
    fn an_adapter_digest_is_read_in_any_case_and_with_a_prefix() {
        let live = LiveState {
            active: Some(format!("sha256:{}", A.to_uppercase())),
            canary: None,
            canary_weight_percent: 0,
            detail: String::new(),
        };
        assert_eq!(Placement::read_back(&live), placed(Some(A), None, 0));
    }

    #[test]
    fn a_digest_that_is_no_digest_is_quoted() {
        let found = differences(&placed(Some(A), None, 0), &placed(Some("edited"), None, 0));
        assert_eq!(
            found,
            vec!["active: Gatehouse made 3f2a00000000 live, the environment serves \"edited\""]
        );
    }
}
