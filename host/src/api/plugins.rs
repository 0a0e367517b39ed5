//! `PluginService`: push, list, describe, activate and roll back plugins.

use super::auth::{Permission, caller};
use super::errors;
use super::errors::registry_status;
use crate::daemon::Daemon;
use crate::plugins::PluginKind;
use crate::plugins::registry::{MAX_PLUGIN_BYTES, Origin, PluginRecord, Push, Registry};
use crate::proto::{self, plugin_service_server::PluginService};
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

pub struct PluginApi {
    pub daemon: Arc<Daemon>,
}

#[tonic::async_trait]
impl PluginService for PluginApi {
    async fn push_plugin(
        &self,
        req: Request<Streaming<proto::PushPluginRequest>>,
    ) -> Result<Response<proto::PushPluginResponse>, Status> {
        let who = caller(&req)?;
        who.require(Permission::Administer)?;
        self.daemon.writable().map_err(errors::status)?;
        let mut stream = req.into_inner();
        let mut header: Option<proto::PushHeader> = None;
        let mut wasm = Vec::new();
        while let Some(part) = stream.message().await? {
            match part.part {
                Some(proto::push_plugin_request::Part::Header(h)) => {
                    if header.is_some() || !wasm.is_empty() {
                        return Err(Status::invalid_argument(
                            "send the header once, before the plugin's bytes",
                        ));
                    }
                    header = Some(h);
                }
                Some(proto::push_plugin_request::Part::Chunk(bytes)) => {
                    if wasm.len() + bytes.len() > MAX_PLUGIN_BYTES {
                        return Err(Status::invalid_argument(format!(
                            "the plugin is over the {MAX_PLUGIN_BYTES}-byte limit"
                        )));
                    }
                    wasm.extend_from_slice(&bytes);
                }
                None => {}
            }
        }
        let header = header.ok_or_else(|| {
            Status::invalid_argument("the push has no header; send the manifest first")
        })?;
        if wasm.is_empty() {
            return Err(Status::invalid_argument(
                "the push has no plugin bytes; send the .wasm after the header",
            ));
        }
        let pushed = self
            .registry()
            .await
            .push(Push {
                wasm,
                manifest: header.manifest_toml,
                signature: Some(header.signature).filter(|s| !s.is_empty()),
                activate: header.activate,
                actor: who.name.clone(),
                origin: Origin::Pushed,
                source_name: if header.source_name.is_empty() {
                    "pushed plugin".to_string()
                } else {
                    header.source_name
                },
            })
            .await
            .map_err(registry_status)?;
        Ok(Response::new(proto::PushPluginResponse {
            plugin: Some(version(&pushed.record, pushed.active)),
            already_known: pushed.known,
        }))
    }

    async fn list_plugins(
        &self,
        req: Request<proto::ListPluginsRequest>,
    ) -> Result<Response<proto::ListPluginsResponse>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let name = Some(req.get_ref().name.as_str()).filter(|n| !n.is_empty());
        let listed = self.registry().await.list(name).map_err(registry_status)?;
        let plugins = listed
            .iter()
            .filter(|(_, active)| name.is_some() || *active)
            .map(|(r, active)| version(r, *active))
            .collect();
        Ok(Response::new(proto::ListPluginsResponse { plugins }))
    }

    async fn describe_plugin(
        &self,
        req: Request<proto::DescribePluginRequest>,
    ) -> Result<Response<proto::PluginVersion>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let r = req.get_ref();
        let record = self
            .registry()
            .await
            .find(&r.name, Some(r.version.as_str()))
            .map_err(registry_status)?;
        let active = self.is_active(&record);
        Ok(Response::new(version(&record, active)))
    }

    async fn activate_plugin(
        &self,
        req: Request<proto::ActivatePluginRequest>,
    ) -> Result<Response<proto::PluginVersion>, Status> {
        let who = caller(&req)?;
        who.require(Permission::Administer)?;
        self.daemon.writable().map_err(errors::status)?;
        let r = req.get_ref();
        if r.version.is_empty() {
            return Err(Status::invalid_argument(
                "name the version (or a digest prefix) to activate",
            ));
        }
        let record = self
            .registry()
            .await
            .activate(&r.name, &r.version, &who.name)
            .await
            .map_err(registry_status)?;
        Ok(Response::new(version(&record, true)))
    }

    async fn rollback_plugin(
        &self,
        req: Request<proto::RollbackPluginRequest>,
    ) -> Result<Response<proto::PluginVersion>, Status> {
        let who = caller(&req)?;
        who.require(Permission::Administer)?;
        self.daemon.writable().map_err(errors::status)?;
        let record = self
            .registry()
            .await
            .rollback(&req.get_ref().name, &who.name)
            .await
            .map_err(registry_status)?;
        Ok(Response::new(version(&record, true)))
    }
}

impl PluginApi {
    /// The registry, once the daemon's start has installed its plugins: a
    /// first start serves while it compiles them.
    async fn registry(&self) -> &Arc<Registry> {
        self.daemon.registry().installed().await;
        self.daemon.registry()
    }

    fn is_active(&self, record: &PluginRecord) -> bool {
        self.daemon
            .active_plugin(&record.description.name)
            .is_some_and(|p| p.digest == record.digest)
    }
}

fn version(r: &PluginRecord, active: bool) -> proto::PluginVersion {
    proto::PluginVersion {
        name: r.description.name.clone(),
        version: r.description.version.clone(),
        kind: match r.description.kind {
            PluginKind::Gate => proto::PluginKind::Gate,
            PluginKind::Adapter => proto::PluginKind::Adapter,
        } as i32,
        digest: r.digest.hex(),
        summary: r.description.summary.clone(),
        params_schema: r.description.params_schema.clone(),
        requested_capabilities: r.description.capabilities.clone(),
        granted_capabilities: r.granted.clone(),
        manifest_toml: r.manifest.to_toml(),
        api_version: r.api_version.clone(),
        size_bytes: r.size_bytes,
        pushed_at_ms: r.pushed_at_ms,
        pushed_by: r.pushed_by.clone(),
        origin: r.origin.as_str().to_string(),
        signed_by: r.signed_by.clone().unwrap_or_default(),
        active,
    }
}
