//! flagd's sync protocol (`flagd.sync.v1.FlagSyncService`), so a service
//! reads its live configuration through a stock OpenFeature SDK and the
//! flagd provider's in-process resolver, with no Gatehouse code: each
//! environment is one flag (see `flags`), pushed again on every change of
//! the environment (a weight step, a promotion, a rollback) as `WatchConfig`
//! is.
//!
//! Rules:
//! - The selector (the `flagd-selector` header, or the request's
//!   `selector`) names one environment, as `NAME` or `environment=NAME`;
//!   none means every environment the caller may read.
//! - A call with a token is checked like any gRPC call (any role reads).
//!   A call without one is refused unless every environment it selects is
//!   listed in `[openfeature] public_read`: an explicit, per-environment
//!   opt-in for deployments whose clients cannot send a token. Never open
//!   by default.

mod flags;

use super::auth::{Permission, Tokens};
use crate::daemon::Daemon;
use crate::flagd::flag_sync_service_server::FlagSyncService;
use crate::flagd::{
    FetchAllFlagsRequest, FetchAllFlagsResponse, GetMetadataRequest, GetMetadataResponse,
    SyncFlagsRequest, SyncFlagsResponse,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status};

/// `[openfeature]` in the daemon config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Environments whose flag may be read without a token. Anyone who can
    /// reach the port then reads their configuration (prompts, parameters,
    /// model names): list only environments whose configuration is not
    /// secret, on a network you trust.
    #[serde(default)]
    pub public_read: Vec<String>,
    /// The flag key of an environment, by environment; by default the
    /// environment's name.
    #[serde(default)]
    pub flag_keys: BTreeMap<String, String>,
}

pub struct FlagSyncApi {
    daemon: Arc<Daemon>,
    tokens: Tokens,
    public: BTreeSet<String>,
    keys: BTreeMap<String, String>,
    rendered: Arc<Mutex<Rendered>>,
}

/// The last flag set rendered for each selection, by the generations it
/// shows: a change reaching a thousand subscribers is rendered once.
type Rendered = BTreeMap<Vec<String>, (Vec<u64>, String)>;

impl FlagSyncApi {
    /// The service, with `settings` checked against the environments the
    /// daemon serves.
    pub fn new(
        daemon: Arc<Daemon>,
        tokens: Tokens,
        settings: &Settings,
    ) -> Result<FlagSyncApi, String> {
        let known: BTreeSet<String> = daemon
            .environments()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|c| c.state.name.clone())
            .collect();
        for env in settings.public_read.iter().chain(settings.flag_keys.keys()) {
            if !known.contains(env) {
                return Err(format!(
                    "[openfeature] names environment {env:?}, which no pipeline has; known: {}",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(FlagSyncApi {
            daemon,
            tokens,
            public: settings.public_read.iter().cloned().collect(),
            keys: settings.flag_keys.clone(),
            rendered: Arc::default(),
        })
    }

    fn key<'a>(&'a self, env: &'a str) -> &'a str {
        self.keys.get(env).map_or(env, String::as_str)
    }

    /// The environments a call selects, once the caller may read them.
    fn admit<T>(&self, req: &Request<T>, body_selector: &str) -> Result<Vec<String>, Status> {
        let header = req
            .metadata()
            .get("flagd-selector")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(body_selector)
            .trim();
        let named = header.strip_prefix("environment=").unwrap_or(header).trim();
        let all: Vec<String> = self
            .daemon
            .environments()
            .map_err(|e| Status::internal(e.to_string()))?
            .iter()
            .map(|c| c.state.name.clone())
            .collect();
        let token = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let selected: Vec<String> = if named.is_empty() {
            match token {
                Some(_) => all,
                None => all
                    .into_iter()
                    .filter(|e| self.public.contains(e))
                    .collect(),
            }
        } else if all.iter().any(|e| e == named) {
            vec![named.to_string()]
        } else {
            return Err(Status::not_found(format!(
                "selector {header:?} names no environment; select one of {} (as NAME or environment=NAME)",
                all.join(", ")
            )));
        };
        match token {
            Some(_) => self.tokens.check(token)?.require(Permission::Read)?,
            None if !selected.is_empty() && selected.iter().all(|e| self.public.contains(e)) => {}
            None => {
                return Err(Status::unauthenticated(
                    "no token; send `authorization: Bearer <token>` (grpcio: access_token_call_credentials, over TLS or local_channel_credentials), or list the environment in `[openfeature] public_read` if its configuration may be read by anyone who reaches this port",
                ));
            }
        }
        Ok(selected)
    }

    fn flag_set(&self, envs: &[String]) -> Result<String, Status> {
        let live = envs
            .iter()
            .map(|e| self.daemon.config(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Status::internal(e.to_string()))?;
        let generations: Vec<u64> = live.iter().map(|l| l.state.generation).collect();
        let mut rendered = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((shown, set)) = rendered.get(envs)
            && *shown == generations
        {
            return Ok(set.clone());
        }
        let set =
            flags::flag_set(envs.iter().zip(&live).map(|(e, l)| (self.key(e), &**l))).to_string();
        rendered.insert(envs.to_vec(), (generations, set.clone()));
        Ok(set)
    }
}

type Stream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<SyncFlagsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl FlagSyncService for FlagSyncApi {
    type SyncFlagsStream = Stream;

    async fn sync_flags(
        &self,
        req: Request<SyncFlagsRequest>,
    ) -> Result<Response<Self::SyncFlagsStream>, Status> {
        #[allow(deprecated)]
        let selector = req.get_ref().selector.clone();
        let envs = self.admit(&req, &selector)?;
        // One merged stream of changes; each change sends the whole set, as
        // flagd does, and a slow client gets the newest set, not each one.
        let mut changes = tokio_stream::StreamMap::new();
        for env in &envs {
            let rx = self
                .daemon
                .watch_config(env)
                .map_err(|e| Status::internal(e.to_string()))?;
            changes.insert(env.clone(), WatchStream::from_changes(rx));
        }
        let api = FlagSyncApi {
            daemon: self.daemon.clone(),
            tokens: self.tokens.clone(),
            public: self.public.clone(),
            keys: self.keys.clone(),
            rendered: self.rendered.clone(),
        };
        Ok(Response::new(Box::pin(self.daemon.feed(
            move |tx| async move {
                loop {
                    let set = api
                        .flag_set(&envs)
                        .map(|flag_configuration| SyncFlagsResponse {
                            flag_configuration,
                            sync_context: None,
                        });
                    if tx.send(set).await.is_err() || changes.next().await.is_none() {
                        return;
                    }
                }
            },
        ))))
    }

    async fn fetch_all_flags(
        &self,
        req: Request<FetchAllFlagsRequest>,
    ) -> Result<Response<FetchAllFlagsResponse>, Status> {
        #[allow(deprecated)]
        let selector = req.get_ref().selector.clone();
        let envs = self.admit(&req, &selector)?;
        Ok(Response::new(FetchAllFlagsResponse {
            flag_configuration: self.flag_set(&envs)?,
        }))
    }

    async fn get_metadata(
        &self,
        req: Request<GetMetadataRequest>,
    ) -> Result<Response<GetMetadataResponse>, Status> {
        self.admit(&req, "")?;
        let text = |s: &str| prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue(s.to_string())),
        };
        Ok(Response::new(GetMetadataResponse {
            metadata: Some(prost_types::Struct {
                fields: [
                    ("flagSetId".to_string(), text("gatehouse")),
                    ("version".to_string(), text(env!("CARGO_PKG_VERSION"))),
                ]
                .into_iter()
                .collect(),
            }),
        }))
    }
}
