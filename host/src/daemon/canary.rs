//! The canary side of the daemon: observations from serving services, the
//! judgements callers read or follow, and the rollback drill.
//!
//! Rules: a report goes straight to the running canary (`canary::live`),
//! with no store write. A judgement is read from the running canary while
//! it runs and from the audit log once it has ended. A drill exercises the
//! automatic rollback path on a live environment: the live configuration
//! runs as its own canary (so no request is served by anything new), then
//! is taken down the way a failed canary is — adapter first, record and
//! event in one transaction, then the watchers — and the time from the
//! rollback decision until a watcher of the environment holds the restored
//! configuration is recorded in the audit log.

use super::{Daemon, Error};
use crate::canary::Observation;
use crate::canary::live::{Ingested, Snapshot};
use crate::configstore::ConfigStore;
use crate::digest::Digest;
use crate::pipeline::definition::BUILTIN_ADAPTER;
use crate::pipeline::release::{Phase, ReleaseId};
use crate::plugins::AdapterCall;
use crate::store::audit::{Draft, EventKind};
use crate::store::{Refusal, refuse};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The share of traffic a drill's canary gets.
pub const DRILL_WEIGHT_PERCENT: u32 = 1;

/// The environment a drill refuses unless forced.
const PRODUCTION: &str = "production";

/// How long a drill waits for the restored configuration to reach a watcher.
const DRILL_WAIT: Duration = Duration::from_secs(10);

/// Judgements of one release's canary, to follow.
pub enum JudgementFeed {
    /// Its canary runs: each new judgement as it is made.
    Live(watch::Receiver<Option<Arc<Snapshot>>>),
    /// Its canary has ended (or never ran): the last recorded judgement.
    Ended(Option<Arc<Snapshot>>),
}

/// What a drill did and measured.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub environment: String,
    /// The live configuration, run as a canary and restored.
    pub digest: Digest,
    pub weight_percent: u32,
    /// The environment's generation once restored.
    pub generation: u64,
    /// From the rollback decision to the restored configuration at a watcher.
    pub recovery: Duration,
    /// When the rollback was decided, by this machine's clock.
    pub decided_at: std::time::SystemTime,
}

impl Daemon {
    /// Feeds one batch of observations to the canary running in
    /// `environment` (`release` 0 matches any running canary).
    pub async fn report<I>(&self, environment: &str, release: u64, batch: I) -> Ingested
    where
        I: IntoIterator<Item = Result<Observation, String>>,
        I::IntoIter: ExactSizeIterator,
    {
        let ingested = self.rt.board.ingest(environment, release, batch).await;
        let known = self.rt.configstore.knows(environment);
        self.metrics.reported(
            if known { environment } else { "unknown" },
            ingested.accepted,
            ingested.dropped,
            ingested.rejected,
        );
        ingested
    }

    /// The latest judgement of `id`'s canary.
    pub fn judgement(&self, id: ReleaseId) -> Result<Arc<Snapshot>, Error> {
        if let Some(s) = self.rt.board.feed(id.0).and_then(|rx| rx.borrow().clone()) {
            return Ok(s);
        }
        let r = self.release(id)?;
        self.recorded_judgement(id)?
            .ok_or_else(|| Error::NoJudgement {
                release: id.0,
                why: match r.phase {
                    Phase::Canary { .. } => {
                        "its canary runs but no observation has arrived yet".to_string()
                    }
                    _ => format!(
                        "none was made; it is {} and a canary runs only in an environment with [environment.canary] and something live to compare against",
                        r.phase.name()
                    ),
                },
            })
    }

    /// `id`'s judgements: live while its canary runs, else the last one.
    pub fn judgement_feed(&self, id: ReleaseId) -> Result<JudgementFeed, Error> {
        self.release(id)?;
        Ok(match self.rt.board.feed(id.0) {
            Some(rx) => JudgementFeed::Live(rx),
            None => JudgementFeed::Ended(self.recorded_judgement(id)?),
        })
    }

    /// The last judgement the audit log holds for `id`.
    pub fn recorded_judgement(&self, id: ReleaseId) -> Result<Option<Arc<Snapshot>>, Error> {
        let r = self.release(id)?;
        let running = matches!(r.phase, Phase::Canary { .. } | Phase::Promoted { .. });
        for e in self.rt.store.events_of(id)?.iter().rev() {
            let Some(v) = e.detail.get("canary") else {
                continue;
            };
            if let Ok(mut s) = serde_json::from_value::<Snapshot>(v.clone()) {
                s.last = !running;
                return Ok(Some(Arc::new(s)));
            }
        }
        Ok(None)
    }

    /// Exercises the rollback path in `env`; see the module documentation.
    pub async fn drill(&self, actor: &str, env: &str, force: bool) -> Result<DrillReport, Error> {
        let refused = |problem: String| Error::Drill {
            environment: env.to_string(),
            problem,
        };
        if env == PRODUCTION && !force {
            return Err(refused(format!(
                "is production; a drill sends {DRILL_WEIGHT_PERCENT}% of its traffic to a copy of the live configuration and takes it down again; pass --force if that is meant"
            )));
        }
        let live = self.rt.configstore.get(env)?;
        let Some(active) = live.state.active.clone() else {
            return Err(refused(
                "has nothing live; a drill restores the live configuration, so deploy one first"
                    .into(),
            ));
        };
        if let Some(c) = &live.state.canary {
            return Err(refused(format!(
                "runs the canary of release {}; drill once it has ended",
                c.release
            )));
        }
        // The drill holds the environment for the live release, as a release
        // would (see `pipeline::holds`): no release acts on it meanwhile,
        // and a restart lets go of it.
        let holder = active.release;
        let took = self
            .rt
            .store
            .commit(|tx| ConfigStore::take_if_free_in(tx, env, holder))
            .await?;
        if let Err(other) = took {
            return Err(refused(format!(
                "is being acted on by release {other}; drill once it has moved on"
            )));
        }
        let drilled = self.drill_holding(actor, env, live, active).await;
        self.rt
            .store
            .commit(|tx| ConfigStore::let_go_in(tx, env, holder))
            .await?;
        drilled
    }

    /// The drill itself, once it holds the environment.
    async fn drill_holding(
        &self,
        actor: &str,
        env: &str,
        live: Arc<crate::configstore::LiveConfig>,
        active: crate::configstore::Deployment,
    ) -> Result<DrillReport, Error> {
        let refused = |problem: String| Error::Drill {
            environment: env.to_string(),
            problem,
        };
        let adapter = self
            .placed_by(&live)?
            .filter(|s| s.adapter != BUILTIN_ADAPTER);
        let view = self.candidate_view(active.digest)?;
        let adapter_failed = |detail| Error::Adapter {
            environment: env.to_string(),
            detail,
        };

        // 1. The live configuration runs as its own canary.
        let mut effect = None;
        if let Some(spec) = &adapter {
            let call = AdapterCall::SetTraffic {
                environment: env.to_string(),
                params: spec.adapter_params.clone(),
                canary: view.clone(),
                weight_percent: DRILL_WEIGHT_PERCENT as u8,
            };
            effect = Some(
                self.rt
                    .adapters
                    .call(&spec.adapter, spec.adapter_timeout, call)
                    .await
                    .map_err(adapter_failed)?,
            );
        }
        let placed = self.rt
            .store
            .commit(|tx| {
                let Some(state) = ConfigStore::place_canary_in(
                    tx,
                    env,
                    active.digest,
                    active.release,
                    DRILL_WEIGHT_PERCENT,
                )?
                else {
                    return refuse(Refusal::Precondition(format!(
                        "{env} already runs the drill's canary; drill again once it is gone"
                    )));
                };
                tx.append(
                    Draft::new(
                        EventKind::EnvApplied,
                        actor,
                        format!(
                            "{env}: drill by {actor}: the live configuration {} runs as a canary at {DRILL_WEIGHT_PERCENT}% (generation {})",
                            active.digest.short(),
                            state.generation
                        ),
                    )
                    .environment(env)
                    .detail(serde_json::json!({
                        "drill": true,
                        "digest": active.digest,
                        "weight_percent": DRILL_WEIGHT_PERCENT,
                        "generation": state.generation,
                    })),
                )?;
                Ok(state)
            })
            .await;
        self.rt.adapters.settle(effect).await;
        self.rt.configstore.publish(placed?)?;
        let mut watcher = self.rt.configstore.watch(env)?;
        watcher.borrow_and_update();

        // 2. The rollback decision, then the path a failed canary takes.
        let decided = Instant::now();
        let decided_at = std::time::SystemTime::now();
        let (adapter_result, effect) = match &adapter {
            Some(spec) => {
                let call = AdapterCall::Rollback {
                    environment: env.to_string(),
                    params: spec.adapter_params.clone(),
                    restore: Some(view),
                };
                match self
                    .rt
                    .adapters
                    .call(&spec.adapter, spec.adapter_timeout, call)
                    .await
                {
                    Ok(effect) => (Ok(()), Some(effect)),
                    Err(e) => (Err(e), None),
                }
            }
            None => (Ok(()), None),
        };
        let restored = self.rt
            .store
            .commit(|tx| {
                let Some((state, down)) = ConfigStore::withdraw_canary_in(tx, env)? else {
                    return refuse(Refusal::Precondition(format!(
                        "the drill's canary left {env} before the drill took it down"
                    )));
                };
                tx.append(
                    Draft::new(
                        EventKind::EnvRolledBack,
                        actor,
                        format!(
                            "{env}: drill by {actor}: canary {} taken out of traffic; {} serves alone",
                            down.digest.short(),
                            active.digest.short()
                        ),
                    )
                    .environment(env)
                    .detail(serde_json::json!({
                        "drill": true,
                        "from": down.digest,
                        "to": active.digest,
                        "generation": state.generation,
                    })),
                )?;
                Ok(state)
            })
            .await;
        let restored = match restored {
            Ok(state) => state,
            Err(e) => {
                self.rt.adapters.settle(effect).await;
                return Err(e.into());
            }
        };
        let generation = restored.generation;
        let published = self.rt.configstore.publish(restored);
        self.rt.adapters.settle(effect).await;
        published?;
        adapter_result.map_err(adapter_failed)?;

        // 3. Measured where services see it: a watcher of the environment,
        // the same channel every WatchConfig stream reads.
        let seen = matches!(
            tokio::time::timeout(
                DRILL_WAIT,
                watcher.wait_for(|c| c.state.generation >= generation && c.state.canary.is_none()),
            )
            .await,
            Ok(Ok(_))
        );
        let recovery = decided.elapsed();
        if !seen {
            return Err(refused(format!(
                "was restored, but no watcher saw it within {DRILL_WAIT:?}"
            )));
        }

        // 4. Recorded.
        let ms = recovery.as_secs_f64() * 1e3;
        self.rt.store
            .commit(|tx| {
                tx.append(
                    Draft::new(
                        EventKind::EnvRolledBack,
                        actor,
                        format!(
                            "{env}: drill recovery {ms:.3} ms, from the rollback decision to the restored configuration at a watcher"
                        ),
                    )
                    .environment(env)
                    .detail(serde_json::json!({
                        "drill": true,
                        "recovery_us": recovery.as_micros() as u64,
                        "restored": active.digest,
                        "generation": generation,
                        "adapter": adapter.as_ref().map(|s| s.adapter.clone()),
                    })),
                )
            })
            .await?;
        Ok(DrillReport {
            environment: env.to_string(),
            digest: active.digest,
            weight_percent: DRILL_WEIGHT_PERCENT,
            generation,
            recovery,
            decided_at,
        })
    }
}
