//! The daemon's domain: everything a caller can ask of Gatehouse, free of
//! gRPC. `api/` authenticates, parses and maps errors; this module decides.
//! Starting lives in [`start`], submitting in [`submit`], operators'
//! actions in [`operate`], the canary's in [`canary`], configuration drift
//! in [`drift`].

mod canary;
mod drift;
mod operate;
pub mod params;
mod start;
mod streams;
mod submit;

pub use canary::{DRILL_WEIGHT_PERCENT, DrillReport, JudgementFeed};
pub use drift::{DriftReport, DriftStatus, Placement};
pub use start::{BUNDLED_PIPELINE, catalog, load_pipelines};
pub use streams::Judged;

use crate::configstore::{self, LiveConfig};
use crate::ids::DAEMON;
use crate::pipeline::attachment::AttachmentError;
use crate::pipeline::candidate::CandidateError;
use crate::pipeline::definition::{self, Pipeline};
use crate::pipeline::executor::{self, Runtime};
use crate::pipeline::release::{Phase, Release, ReleaseId, ReleaseReads};
use crate::plugins;
use crate::plugins::registry::Registry;
use crate::plugins::signing::SigningSettings;
use crate::store::audit::{AuditEvent, Draft, EventKind, Verification};
use crate::store::{self, Refusal};
use crate::telemetry::dora::{self, Dora, Window};
use crate::telemetry::metrics::{self as figures, Metrics};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Where the daemon keeps its state and what it serves.
#[derive(Debug, Clone)]
pub struct Setup {
    pub data_dir: PathBuf,
    /// Where the state lives: the data directory (sled) or etcd.
    pub store: crate::store::StoreSettings,
    /// Pipeline files; none means the bundled example pipeline.
    pub pipelines: Vec<PathBuf>,
    /// A directory of plugins (`NAME.wasm`, with `NAME.toml` manifests)
    /// pushed at start and whenever a file changes.
    pub plugin_dir: Option<PathBuf>,
    /// How often the plugin directory is scanned.
    pub plugin_dir_poll: std::time::Duration,
    /// How often every environment is checked for drift; none: never.
    pub drift_check: Option<std::time::Duration>,
    pub signing: SigningSettings,
    /// Where compiled plugins are shared between data directories (see
    /// [`plugins::compile_cache`]); none: compile for each data directory.
    pub compile_cache: Option<PathBuf>,
    /// What embedded plugins that reach out are granted, by name (see
    /// [`plugins::builtin`]).
    pub grants: BTreeMap<String, plugins::manifest::Manifest>,
    /// Notification receivers, checked (see [`crate::telemetry::notify`]).
    pub notify: Vec<crate::telemetry::notify::Receiver>,
    /// Where the dashboard is, for links in notifications.
    pub links: crate::telemetry::notify::Links,
    /// Where clients reach this daemon's gRPC API and HTTP surface, as
    /// other daemons sharing the store tell them.
    pub advertise: String,
    pub advertise_http: Option<String>,
}

impl Setup {
    /// A setup with the defaults for everything but the data directory.
    pub fn new(data_dir: PathBuf) -> Setup {
        Setup {
            data_dir,
            store: Default::default(),
            pipelines: Vec::new(),
            plugin_dir: None,
            plugin_dir_poll: std::time::Duration::from_secs(1),
            drift_check: None,
            signing: SigningSettings::default(),
            compile_cache: plugins::compile_cache::default_dir(),
            grants: BTreeMap::new(),
            notify: Vec::new(),
            links: Default::default(),
            advertise: String::new(),
            advertise_http: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("pipeline {name:?} is not served by this daemon; served pipelines: {known}")]
    UnknownPipeline { name: String, known: String },
    #[error(transparent)]
    Candidate(#[from] CandidateError),
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    #[error("metadata key {key:?} is invalid: {problem}")]
    Metadata { key: String, problem: String },
    #[error("{0}")]
    IdempotencyKey(String),
    #[error(transparent)]
    Pipeline(#[from] definition::Error),
    #[error(transparent)]
    Plugin(#[from] plugins::Error),
    #[error(transparent)]
    Registry(#[from] plugins::registry::Error),
    #[error("{0}")]
    Signing(String),
    #[error(
        "pipeline {pipeline:?}: {user} is plugin {plugin:?}, which is {problem}; push it with `gatehouse plugin push` or fix the pipeline"
    )]
    MissingPlugin {
        pipeline: String,
        user: String,
        plugin: String,
        problem: String,
    },
    #[error("two pipeline files are both named {0:?}; pipeline names must be unique")]
    DuplicatePipeline(String),
    #[error(transparent)]
    Environment(#[from] configstore::Error),
    #[error(
        "environment {environment:?}: its adapter could not roll it back, so nothing was changed: {detail}; fix the adapter or its target and retry"
    )]
    Adapter { environment: String, detail: String },
    #[error("release {release} has no canary judgement: {why}")]
    NoJudgement { release: u64, why: String },
    #[error("drill refused: environment {environment:?} {problem}")]
    Drill {
        environment: String,
        problem: String,
    },
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Metrics(#[from] figures::Error),
    #[error(transparent)]
    Notify(#[from] crate::telemetry::notify::Error),
}

pub struct Daemon {
    /// What the executor drives releases with; the daemon's own actions
    /// use the same parts.
    rt: Arc<Runtime>,
    registry: Arc<Registry>,
    pipelines: BTreeMap<String, Pipeline>,
    /// Figures for `/metrics`, kept from the audit log.
    metrics: Arc<Metrics>,
    /// Releases with a running executor task.
    running: Mutex<HashSet<ReleaseId>>,
    /// Environments last seen drifted, so the audit log records a change of
    /// drift rather than every check.
    drifted: Mutex<BTreeSet<String>>,
    /// Set once the daemon is stopping, so open streams end and a graceful
    /// shutdown does not wait on watchers forever.
    closing: watch::Sender<bool>,
    /// Set when a plugin refused a pipeline's parameters at start: what
    /// to fix, each at its place in the file. The daemon then releases
    /// nothing and its `serve` exits.
    misconfigured: watch::Sender<Option<String>>,
    /// This daemon, as other daemons sharing the store see it.
    member: store::Member,
    /// Set once this daemon leads and has started leading: it resumed the
    /// open releases and accepts writes. Never set on a follower.
    leading: watch::Sender<bool>,
}

impl Daemon {
    /// Refused, naming the leader, unless this daemon leads: writes go to
    /// the leader of the daemons sharing the store.
    pub fn writable(&self) -> Result<(), Error> {
        self.rt.store.check_leads()?;
        if *self.leading.borrow() {
            return Ok(());
        }
        // Elected a moment ago, still taking over.
        Err(Error::Store(store::Error::Refused(Refusal::Follower {
            leader: None,
        })))
    }

    /// Whether this daemon leads (a daemon of its own store always does,
    /// once started).
    pub fn leads(&self) -> bool {
        *self.leading.borrow() && self.rt.store.lead().borrow().leads()
    }

    /// The daemons sharing the store, or this one alone. Blocking.
    pub fn cluster(&self) -> Result<store::ClusterView, Error> {
        match self.rt.store.cluster() {
            Some(view) => Ok(view?),
            None => Ok(store::ClusterView {
                store: "sled".into(),
                members: vec![self.member.clone()],
                leader: Some(self.member.id.clone()),
                ..Default::default()
            }),
        }
    }

    /// Gives up the lead of a shared store at once, for a graceful stop:
    /// another daemon takes over without waiting for the lease. Nothing is
    /// written after it.
    pub async fn resign(&self) {
        let store = self.rt.store.clone();
        match tokio::task::spawn_blocking(move || store.resign()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(
                "giving up the lead failed ({e}); another daemon takes over when the lease ends"
            ),
            Err(e) => tracing::warn!("giving up the lead failed: {e}"),
        }
    }

    /// This daemon as it joined the store.
    pub fn member(&self) -> &store::Member {
        &self.member
    }

    /// Resolves once the daemon serves all it will: a leader once its
    /// plugins are installed, a follower at once (it serves reads). Gives
    /// the leader's address when it follows.
    pub async fn ready(&self) -> Option<String> {
        let following = match &*self.rt.store.lead().borrow() {
            store::Lead::Following { leader } => Some(
                leader
                    .as_ref()
                    .map_or_else(|| "(being elected)".to_string(), |m| m.grpc.clone()),
            ),
            _ => None,
        };
        if following.is_none() {
            self.registry.installed().await;
        }
        following
    }

    /// Resolves with what to fix if a plugin refuses a pipeline's parameters
    /// as the daemon starts; never resolves otherwise.
    pub fn misconfigured(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut rx = self.misconfigured.subscribe();
        async move {
            let found = match rx.wait_for(Option::is_some).await {
                Ok(found) => found.clone(),
                Err(_) => None,
            };
            match found {
                Some(what) => what,
                None => std::future::pending().await,
            }
        }
    }

    /// Whether a plugin refused a pipeline's parameters at start.
    pub fn is_misconfigured(&self) -> bool {
        self.misconfigured.borrow().is_some()
    }

    /// Tells every open stream to end; the daemon is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Daemon::close`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }

    pub fn pipelines(&self) -> impl Iterator<Item = &Pipeline> {
        self.pipelines.values()
    }

    pub fn release(&self, id: ReleaseId) -> Result<Release, Error> {
        self.rt.store.release(id)?.ok_or_else(|| not_found(id))
    }

    /// The latest releases, newest first; of one pipeline, which must be one
    /// this daemon serves (a typo is an error, not an empty list).
    pub fn releases(&self, pipeline: Option<&str>, limit: usize) -> Result<Vec<Release>, Error> {
        if let Some(name) = pipeline {
            self.pipeline(name)?;
        }
        Ok(self.rt.store.releases(pipeline, limit)?)
    }

    /// A served pipeline, or an error naming those there are.
    fn pipeline(&self, name: &str) -> Result<&Pipeline, Error> {
        self.pipelines
            .get(name)
            .ok_or_else(|| Error::UnknownPipeline {
                name: name.to_string(),
                known: self
                    .pipelines
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    pub fn config(&self, env: &str) -> Result<Arc<LiveConfig>, Error> {
        Ok(self.rt.configstore.get(env)?)
    }

    pub fn watch_config(&self, env: &str) -> Result<watch::Receiver<Arc<LiveConfig>>, Error> {
        Ok(self.rt.configstore.watch(env)?)
    }

    pub fn environments(&self) -> Result<Vec<Arc<LiveConfig>>, Error> {
        self.rt
            .configstore
            .names()
            .iter()
            .map(|n| Ok(self.rt.configstore.get(n)?))
            .collect()
    }

    /// DORA figures of `env` over the `days` before now, from the audit log.
    pub fn dora(&self, env: &str, days: u32) -> Result<Dora, Error> {
        // An unknown name is an error that lists the known ones.
        self.rt.configstore.get(env)?;
        let events = self
            .rt
            .store
            .events_from(1)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(dora::figures(
            &events,
            &Window::last_days(env, days, store::now_ms()),
        ))
    }

    pub fn verify_audit(&self) -> Result<Verification, Error> {
        Ok(self.rt.store.verify_audit()?)
    }

    pub fn events_of(&self, id: ReleaseId) -> Result<Vec<AuditEvent>, Error> {
        self.release(id)?;
        Ok(self.rt.store.events_of(id)?)
    }

    async fn resume(self: &Arc<Self>, id: ReleaseId, took_over: bool) -> Result<(), Error> {
        // An operator may have ended it between the start and now.
        let Some(r) = self
            .rt
            .store
            .release(id)?
            .filter(|r| !r.phase.is_terminal())
        else {
            return Ok(());
        };
        let mut message = format!(
            "release {id} resumed {}, from {}{}",
            if took_over {
                "by a new leader (the daemon that drove it stopped leading)"
            } else {
                "after a daemon restart"
            },
            r.phase.name(),
            r.current_environment()
                .map(|e| format!(" in {e}"))
                .unwrap_or_default()
        );
        // Canary windows live in memory only: what was observed is gone.
        match r.phase {
            Phase::Canary { step, .. } => {
                message += &format!(
                    "; canary step {} observes again from its start (its observations were held in memory)",
                    step + 1
                );
            }
            Phase::Promoted { stage } if r.stages[stage].watch_baseline.is_some() => {
                message += "; the watch after promotion starts again";
            }
            _ => {}
        }
        self.rt
            .store
            .commit(|tx| {
                tx.append(
                    Draft::new(EventKind::ReleaseResumed, DAEMON, message.clone())
                        .release(id.0, r.phase.name()),
                )
            })
            .await?;
        self.spawn(id);
        Ok(())
    }

    /// Starts the release's executor task unless one runs; the task leaves
    /// the running set when the executor returns.
    fn spawn(self: &Arc<Self>, id: ReleaseId) {
        let fresh = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        if fresh {
            let daemon = self.clone();
            tokio::spawn(async move {
                executor::drive(daemon.rt.clone(), id).await;
                daemon
                    .running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            });
        }
    }

    /// The figures for `/metrics`, in Prometheus' text format.
    pub fn metrics_text(&self) -> Result<String, figures::Error> {
        let drifted = self
            .drifted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.metrics.render(&figures::Now {
            leader: self.leads(),
            watchers: self.rt.configstore.watchers(),
            canaries: self.rt.board.all(),
            drifted: self
                .rt
                .configstore
                .names()
                .into_iter()
                .map(|env| {
                    let is = drifted.contains(&env);
                    (env, is)
                })
                .collect(),
            adapter_failures: self.rt.adapters.failures(),
        })
    }

    /// The environments last seen drifted by a drift check (periodic or
    /// asked for), by name.
    pub fn drifted_environments(&self) -> BTreeSet<String> {
        self.drifted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The plugin registry: push, activate, list.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Audit events, announced once durable.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<AuditEvent>> {
        self.rt.store.subscribe()
    }

    /// Events with `seq >= from`, in order.
    pub fn events_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<AuditEvent, Error>> + Send + '_ {
        self.rt
            .store
            .events_from(from)
            .map(|e| e.map_err(Error::from))
    }

    /// The version of plugin `name` that runs now.
    pub fn active_plugin(&self, name: &str) -> Option<Arc<plugins::Plugin>> {
        self.rt.plugins.active(name)
    }

    /// Appends one event to the audit log: for what the server does beside
    /// the domain (a token reload).
    pub async fn audit(&self, draft: Draft) -> Result<(), Error> {
        self.rt.store.commit(|tx| tx.append(draft.clone())).await?;
        Ok(())
    }

    /// A small setting the daemon keeps by key (the generated admin
    /// token's hash).
    pub fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.rt.store.meta(key)?)
    }

    /// Keeps a setting and the event that says so, in one commit.
    pub async fn put_setting(&self, key: &str, value: &[u8], draft: Draft) -> Result<(), Error> {
        self.rt
            .store
            .commit(|tx| {
                tx.put_meta(key, value)?;
                tx.append(draft.clone())
            })
            .await?;
        Ok(())
    }

    /// Holds the store's failure once a write to disk failed (see
    /// [`Store::stopped`]).
    pub fn stopped(&self) -> watch::Receiver<Option<store::Failure>> {
        self.rt.store.stopped()
    }
}

fn not_found(id: ReleaseId) -> Error {
    Error::Store(store::Error::Refused(Refusal::NotFound(format!(
        "release {id} does not exist; `gatehouse status` lists releases"
    ))))
}
