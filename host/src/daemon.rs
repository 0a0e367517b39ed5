//! The daemon's domain: everything a caller can ask of Gatehouse, free of
//! gRPC. `api/` authenticates, parses and maps errors; this module decides.
//! Starting lives in [`start`], submitting in [`submit`], operators'
//! actions in [`operate`], the canary's in [`canary`], configuration drift
//! in [`drift`].

mod canary;
mod drift;
pub mod effects;
mod operate;
pub mod params;
mod start;
mod submit;

pub use canary::{DRILL_WEIGHT_PERCENT, DrillReport, JudgementFeed};
pub use drift::{DriftReport, DriftStatus, Placement};
pub use start::{BUNDLED_PIPELINE, catalog, load_pipelines};

use crate::canary::live::Board;
use crate::configstore::{self, ConfigStore, LiveConfig};
use crate::pipeline::attachment::AttachmentError;
use crate::pipeline::candidate::CandidateError;
use crate::pipeline::definition::{self, Pipeline};
use crate::pipeline::executor::{self, DAEMON};
use crate::pipeline::release::{Phase, Release, ReleaseId};
use crate::plugins::registry::Registry;
use crate::plugins::signing::SigningSettings;
use crate::plugins::{self, Plugins};
use crate::store::audit::{AuditEvent, Draft, EventKind, Verification};
use crate::store::{self, Refusal, Store};
use crate::telemetry::dora::{self, Dora, Window};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Where the daemon keeps its state and what it serves.
#[derive(Debug, Clone)]
pub struct Setup {
    pub data_dir: PathBuf,
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
}

impl Setup {
    /// A setup with the defaults for everything but the data directory.
    pub fn new(data_dir: PathBuf) -> Setup {
        Setup {
            data_dir,
            pipelines: Vec::new(),
            plugin_dir: None,
            plugin_dir_poll: std::time::Duration::from_secs(1),
            drift_check: None,
            signing: SigningSettings::default(),
            compile_cache: plugins::compile_cache::default_dir(),
            grants: BTreeMap::new(),
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
}

pub struct Daemon {
    pub store: Store,
    pub plugins: Arc<Plugins>,
    pub registry: Arc<Registry>,
    pub configstore: ConfigStore,
    /// Canaries running now, fed by serving services' reports.
    pub canaries: Board,
    /// Turns for the adapter calls on each environment.
    pub effects: effects::Effects,
    pipelines: BTreeMap<String, Pipeline>,
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
}

impl Daemon {
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
        self.store.release(id)?.ok_or_else(|| not_found(id))
    }

    /// The latest releases, newest first; of one pipeline, which must be one
    /// this daemon serves (a typo is an error, not an empty list).
    pub fn releases(&self, pipeline: Option<&str>, limit: usize) -> Result<Vec<Release>, Error> {
        if let Some(name) = pipeline {
            self.pipeline(name)?;
        }
        Ok(self.store.releases(pipeline, limit)?)
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
        Ok(self.configstore.get(env)?)
    }

    pub fn watch_config(&self, env: &str) -> Result<watch::Receiver<Arc<LiveConfig>>, Error> {
        Ok(self.configstore.watch(env)?)
    }

    pub fn environments(&self) -> Result<Vec<Arc<LiveConfig>>, Error> {
        self.configstore
            .names()
            .iter()
            .map(|n| Ok(self.configstore.get(n)?))
            .collect()
    }

    /// DORA figures of `env` over the `days` before now, from the audit log.
    pub fn dora(&self, env: &str, days: u32) -> Result<Dora, Error> {
        // An unknown name is an error that lists the known ones.
        self.configstore.get(env)?;
        let events = self.store.events_from(1).collect::<Result<Vec<_>, _>>()?;
        Ok(dora::figures(
            &events,
            &Window::last_days(env, days, store::now_ms()),
        ))
    }

    pub fn verify_audit(&self) -> Result<Verification, Error> {
        Ok(self.store.verify_audit()?)
    }

    pub fn events_of(&self, id: ReleaseId) -> Result<Vec<AuditEvent>, Error> {
        self.release(id)?;
        Ok(self.store.events_of(id)?)
    }

    async fn resume(self: &Arc<Self>, id: ReleaseId) -> Result<(), Error> {
        // An operator may have ended it between the start and now.
        let Some(r) = self.store.release(id)?.filter(|r| !r.phase.is_terminal()) else {
            return Ok(());
        };
        let mut message = format!(
            "release {id} resumed after a daemon restart, from {}{}",
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
        self.store
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

    fn spawn(self: &Arc<Self>, id: ReleaseId) {
        let fresh = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        if fresh {
            tokio::spawn(executor::drive(self.clone(), id));
        }
    }

    /// Called by the executor when a release's task ends.
    pub(crate) fn finished(&self, id: ReleaseId) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}

fn not_found(id: ReleaseId) -> Error {
    Error::Store(store::Error::Refused(Refusal::NotFound(format!(
        "release {id} does not exist; `gatehouse status` lists releases"
    ))))
}
