//! One actor per environment: the adapter calls that act on an environment
//! (apply, traffic, rollback, the drift check's read, a drill) run one at a
//! time, in order of arrival, whoever makes them; and what the adapter was
//! told is checked against what the store records.
//!
//! Rules:
//! - Every adapter call takes its environment's turn first. A failed attempt
//!   lets go before its back-off, so a failing adapter never holds others
//!   up; a retry queues again.
//! - A call that succeeds keeps the turn in the [`Effect`] it returns until
//!   its caller has committed what the call did; then [`Effect::settle`]
//!   checks the invariant: **what the adapter was last told for the
//!   environment equals what the store records as live, or a release that
//!   holds the environment (see `pipeline::holds`) will act on it again** (a
//!   repair under way). A breach with nobody to repair it (an abort landed
//!   while an apply was in flight, or the commit failed) is repaired at
//!   once, in the same turn: the adapter is told the record again, and the
//!   audit log gets `env.repaired` with both sides.
//! - What each environment was told is kept in memory, part by part: a part
//!   is unknown at start, after a failed call (it may have half acted), and
//!   where the adapter contract leaves it to the adapter (a rollback with
//!   nothing named restores the adapter's own previous). Only known parts
//!   are checked; a `current` read makes both known.
//! - Turns are fair (tokio's mutex queues waiters in order).
//! - This orders calls inside one daemon. Which release may act on an
//!   environment at all is decided in the store before any call (see
//!   `pipeline::holds`), so it holds across restarts too.

mod told;

use super::registry::Registry;
use super::sandbox::Limits;
use super::{AdapterCall, CALL_MEMORY_LIMIT, CandidateView, LiveState, Plugins};
use crate::configstore::{EnvReads, EnvState};
use crate::digest::Digest;
use crate::ids::DAEMON;
use crate::store::Store;
use crate::store::audit::{Draft, EventKind};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;
pub use told::Told;
use tracing::Instrument;

/// Attempts at an adapter call before it is given up.
const ADAPTER_ATTEMPTS: u32 = 3;

/// The adapter calls of a daemon: the plugins that answer them, the store
/// that records what they did, and each environment's turn.
pub struct Adapters {
    store: Store,
    plugins: Arc<Plugins>,
    registry: Arc<Registry>,
    turns: Turns,
    /// Failed attempts since start, by adapter and kind of failure.
    failures: Mutex<BTreeMap<(String, &'static str), u64>>,
}

/// Each environment's turn, with what its adapter was last told.
#[derive(Default)]
pub struct Turns {
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Told>>>>,
}

impl Turns {
    /// Waits for `env`'s turn; the environment is this caller's until the
    /// guard drops.
    pub async fn turn(&self, env: &str) -> OwnedMutexGuard<Told> {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
            turns.entry(env.to_string()).or_default().clone()
        };
        turn.lock_owned().await
    }
}

/// A successful adapter call whose environment's turn is still held: the
/// caller commits what the call did, then [`settles`](Effect::settle) it.
/// Dropped unsettled, it lets the turn go unchecked.
pub struct Effect {
    turn: OwnedMutexGuard<Told>,
    environment: String,
    adapter: String,
    params: serde_json::Value,
    timeout: Duration,
    /// The digest of the plugin version that answered.
    pub plugin: Digest,
    /// What a `current` call read back.
    pub live: Option<LiveState>,
}

impl Adapters {
    pub fn new(store: Store, plugins: Arc<Plugins>, registry: Arc<Registry>) -> Adapters {
        Adapters {
            store,
            plugins,
            registry,
            turns: Turns::default(),
            failures: Mutex::new(BTreeMap::new()),
        }
    }

    fn failed(&self, adapter: &str, kind: &'static str) {
        *self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((adapter.to_string(), kind))
            .or_default() += 1;
    }

    /// Failed attempts since start, by adapter and kind of failure
    /// (`timeout`, `trap`, `adapter_failed`, `not_installed`, ...).
    pub fn failures(&self) -> Vec<((String, &'static str), u64)> {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    }

    /// Runs one adapter call in its environment's turn, retrying a failed one
    /// after a back-off with full jitter (a random wait up to 200 ms, then up to
    /// 400 ms), so calls that failed together do not retry together; returns
    /// the call's [`Effect`], or the last failure.
    pub async fn call(
        &self,
        adapter: &str,
        timeout: Duration,
        call: AdapterCall,
    ) -> Result<Effect, String> {
        self.registry.installed().await;
        let mut backoff = Duration::from_millis(200);
        let mut last = String::new();
        for attempt in 1..=ADAPTER_ATTEMPTS {
            let mut turn = self.turns.turn(call.environment()).await;
            match attempt_call(self, adapter, timeout, &call, attempt).await {
                Ok((plugin, live)) => {
                    *turn = turn.after(&call, live.as_ref());
                    let (environment, params) = match &call {
                        AdapterCall::Apply {
                            environment,
                            params,
                            ..
                        }
                        | AdapterCall::Current {
                            environment,
                            params,
                        }
                        | AdapterCall::SetTraffic {
                            environment,
                            params,
                            ..
                        }
                        | AdapterCall::Rollback {
                            environment,
                            params,
                            ..
                        } => (environment.clone(), params.clone()),
                    };
                    return Ok(Effect {
                        turn,
                        environment,
                        adapter: adapter.to_string(),
                        params,
                        timeout,
                        plugin,
                        live,
                    });
                }
                Err((kind, e)) => {
                    *turn = Told::default();
                    self.failed(adapter, kind);
                    last = e;
                }
            }
            drop(turn);
            tracing::warn!(adapter, attempt, error = %last, "adapter call failed");
            if attempt < ADAPTER_ATTEMPTS {
                tokio::time::sleep(backoff.mul_f64(fastrand::f64())).await;
                backoff *= 2;
            }
        }
        Err(format!("{last} (after {ADAPTER_ATTEMPTS} attempts)"))
    }

    /// Settles `effect` if there is one (none for the built-in config store).
    pub async fn settle(&self, effect: Option<Effect>) {
        if let Some(effect) = effect {
            effect.settle(self).await;
        }
    }
}

/// One attempt, the caller holding the environment's turn. The version of
/// the plugin active now answers, to the end of this call.
async fn attempt_call(
    adapters: &Adapters,
    adapter: &str,
    timeout: Duration,
    call: &AdapterCall,
    attempt: u32,
) -> Result<(Digest, Option<LiveState>), (&'static str, String)> {
    let plugin = adapters
        .plugins
        .adapter(adapter)
        .map_err(|e| (e.kind(), format!("plugin {adapter} {e}")))?;
    let span = tracing::info_span!("adapter", adapter, plugin_digest = %plugin.digest.short());
    let limits = Limits {
        timeout,
        fuel: crate::plugins::DEFAULT_FUEL,
        memory: CALL_MEMORY_LIMIT,
    };
    let (environment, function) = (call.environment(), call.name());
    tracing::debug!(
        adapter,
        environment,
        function,
        attempt,
        "adapter call started"
    );
    let answer = adapters
        .plugins
        .adapt(&plugin, call.clone(), limits)
        .instrument(span)
        .await;
    tracing::debug!(
        adapter,
        environment,
        function,
        ok = answer.is_ok(),
        "adapter call ended"
    );
    answer
        .map(|live| (plugin.digest, live))
        .map_err(|e| (e.kind(), format!("plugin {adapter} {e}")))
}

impl Effect {
    /// Checks, once the caller has committed, that what the adapter was told
    /// is what the store records (or that a holder will act again), and
    /// repairs a breach; see the module rules. Lets the turn go.
    pub async fn settle(mut self, adapters: &Adapters) {
        let env = self.environment.clone();
        let state = match adapters.store.environment(&env) {
            Ok(state) => state.unwrap_or_else(|| EnvState::empty(&env)),
            Err(e) => {
                tracing::warn!(environment = %env, error = %e, "cannot read the record to check what the adapter was told");
                return;
            }
        };
        let recorded = Told::recorded(&state);
        let breaches = self.turn.breaches(&recorded);
        if breaches.is_empty() {
            return;
        }
        if let Some(holder) = state.holder {
            tracing::debug!(environment = %env, holder = holder.0, "the adapter is ahead of the record; its holder acts again");
            return;
        }
        let repaired = self.repair(adapters, &state).await;
        let (message, outcome) = match &repaired {
            Ok(()) => (
                format!(
                    "{env}: the adapter was told what the record does not say; told the record again"
                ),
                "repaired".to_string(),
            ),
            Err(e) => (
                format!(
                    "{env}: the adapter was told what the record does not say, and could not be told the record again: {e}; see `gatehouse drift`"
                ),
                format!("not repaired: {e}"),
            ),
        };
        match &repaired {
            Ok(()) => {
                tracing::warn!(environment = %env, ?breaches, "repaired an adapter that was ahead of the record")
            }
            Err(e) => {
                tracing::error!(environment = %env, ?breaches, error = %e, "an adapter serves what the record does not say")
            }
        }
        let detail = serde_json::json!({
            "adapter": self.adapter,
            "differences": breaches
                .iter()
                .map(|(part, told, recorded)| serde_json::json!({ "part": part, "told": told, "recorded": recorded }))
                .collect::<Vec<_>>(),
            "generation": state.generation,
            "outcome": outcome,
        });
        let audited = adapters
            .store
            .commit(|tx| {
                tx.append(
                    Draft::new(EventKind::EnvRepaired, DAEMON, message.clone())
                        .environment(&env)
                        .detail(detail.clone()),
                )
            })
            .await;
        if let Err(e) = audited {
            tracing::error!(environment = %env, error = %e, "cannot audit the adapter's repair");
        }
    }

    /// Tells the adapter the record: its active deployment, then its canary.
    async fn repair(&mut self, adapters: &Adapters, state: &EnvState) -> Result<(), String> {
        let view = |digest: Digest| -> Result<CandidateView, String> {
            Ok(CandidateView {
                digest,
                bytes: Arc::new(
                    adapters
                        .store
                        .candidate(&digest)
                        .map_err(|e| e.to_string())?
                        .unwrap_or_default(),
                ),
                metadata: Vec::new(),
            })
        };
        let Some(active) = &state.active else {
            return Err(
                "nothing is live in the record, and an adapter cannot be told to serve nothing"
                    .into(),
            );
        };
        let mut calls = vec![AdapterCall::Rollback {
            environment: self.environment.clone(),
            params: self.params.clone(),
            restore: Some(view(active.digest)?),
        }];
        if let Some(canary) = &state.canary {
            calls.push(AdapterCall::SetTraffic {
                environment: self.environment.clone(),
                params: self.params.clone(),
                canary: view(canary.digest)?,
                weight_percent: state.canary_weight_percent.min(100) as u8,
            });
        }
        for call in calls {
            match attempt_call(adapters, &self.adapter, self.timeout, &call, 1).await {
                Ok((_, live)) => *self.turn = self.turn.after(&call, live.as_ref()),
                Err((kind, e)) => {
                    *self.turn = Told::default();
                    adapters.failed(&self.adapter, kind);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_to_one_environment_never_overlap_and_others_run_beside() {
        let effects = Arc::new(Turns::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut calls = Vec::new();
        for _ in 0..8 {
            let (effects, inside, most) = (effects.clone(), inside.clone(), most.clone());
            calls.push(tokio::spawn(async move {
                let _turn = effects.turn("staging").await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        // Another environment's turn is free meanwhile.
        let other = tokio::time::timeout(Duration::from_secs(1), effects.turn("production")).await;
        assert!(other.is_ok(), "production waited behind staging");
        for c in calls {
            c.await.expect("call");
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn view(n: u8) -> CandidateView {
        CandidateView {
            digest: digest(n),
            bytes: Arc::new(vec![n]),
            metadata: Vec::new(),
        }
    }

    fn params() -> (String, serde_json::Value) {
        ("staging".to_string(), serde_json::Value::Null)
    }

    #[test]
    fn what_an_adapter_holds_follows_the_contract_call_by_call() {
        let (environment, params) = params();
        let start = Told::default();
        let applied = start.after(
            &AdapterCall::Apply {
                environment: environment.clone(),
                params: params.clone(),
                candidate: view(1),
            },
            None,
        );
        assert_eq!(applied.active, Some(Some(digest(1))));
        assert_eq!(applied.canary, None, "an apply says nothing of a canary");
        let canary = applied.after(
            &AdapterCall::SetTraffic {
                environment: environment.clone(),
                params: params.clone(),
                canary: view(2),
                weight_percent: 10,
            },
            None,
        );
        assert_eq!(canary.canary, Some(Some((digest(2), 10))));
        assert_eq!(canary.active, Some(Some(digest(1))));
        let promoted = canary.after(
            &AdapterCall::Apply {
                environment: environment.clone(),
                params: params.clone(),
                candidate: view(2),
            },
            None,
        );
        assert_eq!(
            promoted,
            Told {
                active: Some(Some(digest(2))),
                canary: Some(None)
            }
        );
        let back = promoted.after(
            &AdapterCall::Rollback {
                environment: environment.clone(),
                params: params.clone(),
                restore: None,
            },
            None,
        );
        assert_eq!(back.active, None, "the adapter's own previous is unknown");
        assert_eq!(back.canary, Some(None));
        let read = back.after(
            &AdapterCall::Current {
                environment,
                params,
            },
            Some(&LiveState {
                active: Some(format!("sha256:{}", digest(3).hex().to_uppercase())),
                canary: None,
                canary_weight_percent: 0,
                detail: String::new(),
            }),
        );
        assert_eq!(read.active, Some(Some(digest(3))));
    }

    #[test]
    fn only_known_parts_that_differ_are_breaches() {
        let recorded = Told {
            active: Some(Some(digest(1))),
            canary: Some(None),
        };
        assert!(Told::default().breaches(&recorded).is_empty());
        assert!(recorded.breaches(&recorded).is_empty());
        let ahead = Told {
            active: Some(Some(digest(2))),
            canary: None,
        };
        let found = ahead.breaches(&recorded);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "active");
        assert_eq!(found[0].1, digest(2).hex());
        assert_eq!(found[0].2, digest(1).hex());
        let stray_canary = Told {
            active: Some(Some(digest(1))),
            canary: Some(Some((digest(2), 10))),
        };
        assert_eq!(stray_canary.breaches(&recorded)[0].0, "canary");
    }
}
