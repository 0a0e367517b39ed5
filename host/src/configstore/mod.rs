//! The built-in environment: which candidate is live in each environment, and
//! the stream services watch to hot-reload it.
//!
//! Rules: a change is made inside a [`Store`] transaction (so it commits
//! together with the release's phase and its audit event), and only after
//! that commit is it published to watchers, who always see a state that is
//! already on disk. Applying the digest that is already live changes nothing.
//! A canary runs beside the active deployment at a weight; promoting it is
//! applying its digest (the canary is cleared), and rolling back while one
//! runs takes the canary down and leaves the active deployment serving.

mod storage;

use crate::digest::Digest;
use crate::ids::ReleaseId;
use crate::store::{self, Refusal, Store, Tx, TxResult, refuse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
pub use storage::{ENVIRONMENTS, EnvReads, EnvWrites};
use tokio::sync::watch;

/// How many earlier deployments an environment remembers for rollback.
const HISTORY: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub digest: Digest,
    pub release: ReleaseId,
    pub deployed_at_ms: i64,
}

/// What is live in one environment, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvState {
    pub name: String,
    /// Increases with every change.
    pub generation: u64,
    pub active: Option<Deployment>,
    /// Earlier deployments, oldest first; rollback restores the last.
    pub history: Vec<Deployment>,
    pub canary: Option<Deployment>,
    pub canary_weight_percent: u32,
    /// The release that may act on the environment now (apply, canary,
    /// rollback), decided here before any adapter call; see [`Turn`]. Read
    /// it from the store: the copy watchers are sent may lag, as holding
    /// changes nothing live and is not published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<ReleaseId>,
    /// Releases waiting for the environment, first in line first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<ReleaseId>,
}

impl EnvState {
    pub(crate) fn empty(name: &str) -> EnvState {
        EnvState {
            name: name.to_string(),
            generation: 0,
            active: None,
            history: Vec::new(),
            canary: None,
            canary_weight_percent: 0,
            holder: None,
            waiting: Vec::new(),
        }
    }
}

/// A release's turn at an environment, as [`ConfigStore::claim_in`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// The release holds the environment: its effects may start.
    Held,
    /// Another release holds it (or is first in line); this one waits at
    /// `place` (1 = next). `joined` is true when it has just joined the line.
    Waiting {
        holder: Option<ReleaseId>,
        place: usize,
        joined: bool,
    },
}

/// An environment's state with the bytes of what it runs, as watchers get it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    pub state: EnvState,
    pub active_bytes: Option<Arc<Vec<u8>>>,
    pub canary_bytes: Option<Arc<Vec<u8>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "environment {name:?} is not in any pipeline this daemon serves; known environments: {known}"
    )]
    UnknownEnvironment { name: String, known: String },
    #[error(transparent)]
    Store(#[from] store::Error),
}

pub struct ConfigStore {
    store: Store,
    channels: Mutex<BTreeMap<String, watch::Sender<Arc<LiveConfig>>>>,
}

impl ConfigStore {
    /// Loads the stored state of each named environment.
    pub fn open(
        store: Store,
        environments: impl IntoIterator<Item = String>,
    ) -> Result<ConfigStore, Error> {
        let cs = ConfigStore {
            store,
            channels: Mutex::new(BTreeMap::new()),
        };
        for name in environments {
            let state = cs
                .store
                .environment(&name)?
                .unwrap_or_else(|| EnvState::empty(&name));
            let live = cs.live(state)?;
            cs.lock().insert(name, watch::channel(Arc::new(live)).0);
        }
        Ok(cs)
    }

    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The current configuration of an environment.
    pub fn get(&self, env: &str) -> Result<Arc<LiveConfig>, Error> {
        Ok(self.sender(env)?.borrow().clone())
    }

    /// A receiver that holds the current configuration and wakes on each change.
    pub fn watch(&self, env: &str) -> Result<watch::Receiver<Arc<LiveConfig>>, Error> {
        Ok(self.sender(env)?.subscribe())
    }

    /// Makes `digest` live in `env`, inside the caller's transaction. Returns
    /// the new state, or `None` when it was live already.
    pub fn apply_in(
        tx: &Tx<'_>,
        env: &str,
        digest: Digest,
        release: ReleaseId,
    ) -> TxResult<Option<EnvState>> {
        let mut state = tx.environment(env)?.unwrap_or_else(|| EnvState::empty(env));
        if state.active.as_ref().is_some_and(|a| a.digest == digest) {
            return Ok(None);
        }
        if let Some(previous) = state.active.take() {
            state.history.push(previous);
            if state.history.len() > HISTORY {
                state.history.remove(0);
            }
        }
        state.active = Some(Deployment {
            digest,
            release,
            deployed_at_ms: tx.now_ms(),
        });
        state.canary = None;
        state.canary_weight_percent = 0;
        state.generation += 1;
        tx.put_environment(&state)?;
        Ok(Some(state))
    }

    /// Runs `digest` as the canary of `env` at `weight_percent`, beside the
    /// active deployment, inside the caller's transaction. Returns the new
    /// state, or `None` when exactly that was in place already.
    pub fn place_canary_in(
        tx: &Tx<'_>,
        env: &str,
        digest: Digest,
        release: ReleaseId,
        weight_percent: u32,
    ) -> TxResult<Option<EnvState>> {
        let Some(mut state) = tx.environment(env)?.filter(|s| s.active.is_some()) else {
            return refuse(Refusal::Precondition(format!(
                "environment {env} has nothing live; a canary needs a baseline to run beside"
            )));
        };
        if let Some(other) = state.canary.as_ref().filter(|c| c.release != release) {
            return refuse(Refusal::Precondition(format!(
                "environment {env} already runs the canary of release {}; one canary at a time",
                other.release
            )));
        }
        let same = state
            .canary
            .as_ref()
            .is_some_and(|c| c.digest == digest && c.release == release);
        if same && state.canary_weight_percent == weight_percent {
            return Ok(None);
        }
        if !same {
            state.canary = Some(Deployment {
                digest,
                release,
                deployed_at_ms: tx.now_ms(),
            });
        }
        state.canary_weight_percent = weight_percent.min(100);
        state.generation += 1;
        tx.put_environment(&state)?;
        Ok(Some(state))
    }

    /// Takes the canary of `env` out of traffic inside the caller's
    /// transaction; the active deployment stays. Returns the new state and
    /// the canary taken down, or `None` when no canary ran.
    pub fn withdraw_canary_in(tx: &Tx<'_>, env: &str) -> TxResult<Option<(EnvState, Deployment)>> {
        let Some(mut state) = tx.environment(env)? else {
            return Ok(None);
        };
        let Some(canary) = state.canary.take() else {
            return Ok(None);
        };
        state.canary_weight_percent = 0;
        state.generation += 1;
        tx.put_environment(&state)?;
        Ok(Some((state, canary)))
    }

    /// Rolls `env` back inside the caller's transaction: while a canary
    /// runs, takes it down; otherwise restores the previous deployment.
    /// Returns the new state and the deployment taken down.
    pub fn rollback_in(tx: &Tx<'_>, env: &str) -> TxResult<(EnvState, Deployment)> {
        if let Some(withdrawn) = ConfigStore::withdraw_canary_in(tx, env)? {
            return Ok(withdrawn);
        }
        let Some(mut state) = tx.environment(env)? else {
            return refuse(Refusal::Precondition(format!(
                "environment {env} has never had a deployment; there is nothing to roll back"
            )));
        };
        let (Some(current), Some(previous)) = (state.active.clone(), state.history.pop()) else {
            return refuse(Refusal::Precondition(format!(
                "environment {env} has no previous deployment to roll back to"
            )));
        };
        state.active = Some(previous);
        state.canary = None;
        state.canary_weight_percent = 0;
        state.generation += 1;
        tx.put_environment(&state)?;
        Ok((state, current))
    }

    /// Takes `env` for `release` inside the caller's transaction when it is
    /// free and no one is ahead in line; otherwise puts the release in line
    /// (once). Holding does not change what is live, so no generation.
    pub fn claim_in(tx: &Tx<'_>, env: &str, release: ReleaseId) -> TxResult<Turn> {
        let mut state = tx.environment(env)?.unwrap_or_else(|| EnvState::empty(env));
        if state.holder == Some(release) {
            return Ok(Turn::Held);
        }
        if state.holder.is_none() && state.waiting.first().is_none_or(|w| *w == release) {
            state.holder = Some(release);
            state.waiting.retain(|w| *w != release);
            tx.put_environment(&state)?;
            return Ok(Turn::Held);
        }
        let joined = !state.waiting.contains(&release);
        if joined {
            state.waiting.push(release);
            tx.put_environment(&state)?;
        }
        let place = state
            .waiting
            .iter()
            .position(|w| *w == release)
            .unwrap_or(0)
            + 1;
        Ok(Turn::Waiting {
            holder: state.holder,
            place,
            joined,
        })
    }

    /// Takes `env` for `release` only if no one holds it or waits for it;
    /// otherwise names who does, and changes nothing.
    pub fn take_if_free_in(
        tx: &Tx<'_>,
        env: &str,
        release: ReleaseId,
    ) -> TxResult<Result<(), ReleaseId>> {
        let mut state = tx.environment(env)?.unwrap_or_else(|| EnvState::empty(env));
        if let Some(other) = state.holder.or(state.waiting.first().copied()) {
            return Ok(Err(other));
        }
        state.holder = Some(release);
        tx.put_environment(&state)?;
        Ok(Ok(()))
    }

    /// Lets go of `env` for `release` inside the caller's transaction: it
    /// neither holds it nor waits for it any more. True when that changed
    /// anything.
    pub fn let_go_in(tx: &Tx<'_>, env: &str, release: ReleaseId) -> TxResult<bool> {
        let Some(mut state) = tx.environment(env)? else {
            return Ok(false);
        };
        let before = state.waiting.len();
        state.waiting.retain(|w| *w != release);
        let mut changed = state.waiting.len() != before;
        if state.holder == Some(release) {
            state.holder = None;
            changed = true;
        }
        if changed {
            tx.put_environment(&state)?;
        }
        Ok(changed)
    }

    /// Tells every watcher of the environment about a committed state,
    /// unless they already have it or a newer one (a follower hears of a
    /// change both from the store and from its own reading of it).
    pub fn publish(&self, state: EnvState) -> Result<(), Error> {
        let name = state.name.clone();
        let known = self
            .lock()
            .get(&name)
            .map(|tx| tx.borrow().state.generation);
        if known.is_some_and(|g| state.generation <= g) {
            return Ok(());
        }
        let live = Arc::new(self.live(state)?);
        let mut channels = self.lock();
        match channels.get(&name) {
            Some(tx) => {
                tx.send_if_modified(|now| {
                    let newer =
                        live.state.generation > now.state.generation || live.state.generation == 0;
                    if newer {
                        *now = live.clone();
                    }
                    newer
                });
            }
            None => {
                channels.insert(name, watch::channel(live).0);
            }
        }
        Ok(())
    }

    fn live(&self, state: EnvState) -> Result<LiveConfig, Error> {
        let bytes = |d: &Option<Deployment>| -> Result<Option<Arc<Vec<u8>>>, Error> {
            Ok(match d {
                Some(d) => self.store.candidate(&d.digest)?.map(Arc::new),
                None => None,
            })
        };
        Ok(LiveConfig {
            active_bytes: bytes(&state.active)?,
            canary_bytes: bytes(&state.canary)?,
            state,
        })
    }

    fn sender(&self, env: &str) -> Result<watch::Sender<Arc<LiveConfig>>, Error> {
        let channels = self.lock();
        channels
            .get(env)
            .cloned()
            .ok_or_else(|| Error::UnknownEnvironment {
                name: env.to_string(),
                known: channels.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// Whether `env` is one of the environments served.
    pub fn knows(&self, env: &str) -> bool {
        self.lock().contains_key(env)
    }

    /// How many services follow each environment's configuration now.
    pub fn watchers(&self) -> Vec<(String, usize)> {
        self.lock()
            .iter()
            .map(|(env, tx)| (env.clone(), tx.receiver_count()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, watch::Sender<Arc<LiveConfig>>>> {
        // A poisoned map of channels is still a valid map of channels.
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn apply(store: &Store, cs: &ConfigStore, env: &str, bytes: &[u8], release: u64) -> bool {
        let d = Digest::of(bytes);
        store.put_candidate(&d, bytes).unwrap();
        let changed = store
            .commit(|tx| ConfigStore::apply_in(tx, env, d, ReleaseId(release)))
            .await
            .unwrap();
        let was_change = changed.is_some();
        if let Some(s) = changed {
            cs.publish(s).unwrap();
        }
        was_change
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn applying_the_live_digest_again_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cs = ConfigStore::open(store.clone(), ["dev".to_string()]).unwrap();
        assert!(apply(&store, &cs, "dev", b"{\"model\":\"a\"}", 1).await);
        assert!(!apply(&store, &cs, "dev", b"{\"model\":\"a\"}", 1).await);
        let live = cs.get("dev").unwrap();
        assert_eq!(live.state.generation, 1);
        assert!(live.state.history.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rollback_restores_previous_digest_and_watchers_see_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cs = ConfigStore::open(store.clone(), ["prod".to_string()]).unwrap();
        let mut rx = cs.watch("prod").unwrap();
        apply(&store, &cs, "prod", b"{\"model\":\"a\"}", 1).await;
        apply(&store, &cs, "prod", b"{\"model\":\"b\"}", 2).await;
        rx.changed().await.unwrap();
        assert_eq!(
            rx.borrow_and_update().active_bytes.as_deref().unwrap(),
            b"{\"model\":\"b\"}"
        );
        let (state, down) = store
            .commit(|tx| ConfigStore::rollback_in(tx, "prod"))
            .await
            .unwrap();
        assert_eq!(down.release, ReleaseId(2));
        cs.publish(state).unwrap();
        rx.changed().await.unwrap();
        let live = rx.borrow_and_update().clone();
        assert_eq!(live.active_bytes.as_deref().unwrap(), b"{\"model\":\"a\"}");
        assert_eq!(live.state.generation, 3);

        let err = store
            .commit(|tx| ConfigStore::rollback_in(tx, "prod"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no previous deployment"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rollback_while_a_canary_runs_takes_the_canary_down_and_keeps_the_active() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cs = ConfigStore::open(store.clone(), ["prod".to_string()]).unwrap();
        let d = Digest::of(b"{\"model\":\"b\"}");
        let refused = store
            .commit(|tx| ConfigStore::place_canary_in(tx, "prod", d, ReleaseId(2), 5))
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("baseline"), "{refused}");
        apply(&store, &cs, "prod", b"{\"model\":\"a\"}", 1).await;
        let placed = store
            .commit(|tx| ConfigStore::place_canary_in(tx, "prod", d, ReleaseId(2), 5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(placed.canary_weight_percent, 5);
        let again = store
            .commit(|tx| ConfigStore::place_canary_in(tx, "prod", d, ReleaseId(2), 5))
            .await
            .unwrap();
        assert!(
            again.is_none(),
            "placing the same canary twice changes nothing"
        );
        let (state, down) = store
            .commit(|tx| ConfigStore::rollback_in(tx, "prod"))
            .await
            .unwrap();
        assert_eq!(down.digest, d);
        assert_eq!(state.canary, None);
        assert_eq!(state.canary_weight_percent, 0);
        assert_eq!(
            state.active.unwrap().digest,
            Digest::of(b"{\"model\":\"a\"}")
        );
        assert_eq!(state.generation, placed.generation + 1);
    }

    #[test]
    fn unknown_environment_lists_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cs = ConfigStore::open(store, ["dev".to_string(), "prod".to_string()]).unwrap();
        let err = cs.get("staging").unwrap_err().to_string();
        assert!(
            err.contains("\"staging\"") && err.contains("dev, prod"),
            "{err}"
        );
    }
}
