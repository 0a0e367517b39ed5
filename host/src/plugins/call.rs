//! Calling plugins: `describe()` and the checks a component passes before
//! it is a plugin, gate evaluations and adapter calls, each in a fresh
//! sandbox once a slot of its kind is free, and what their answers become.

use super::capabilities::{self, Grants};
use super::manifest::Manifest;
use super::sandbox::{self, Callee, Limits};
use super::world::latest::gatehouse::plugin::types as wit;
use super::world::{self, Answer, Api, Entry};
use super::{
    ADAPTER_SLOTS, AdapterCall, Attachments, CandidateView, DESCRIBE_LIMITS, Description, Error,
    GATE_SLOTS, GateError, GateInput, LiveState, ON_PLUGIN_THREADS, Plugin, PluginKind, Plugins,
    Verdict, Wait, plugin_text, verdict,
};
use crate::digest::Digest;
use std::sync::Arc;
use wasmtime::component::Component;

impl Plugins {
    /// Runs one call on the plugin threads, once a slot of the plugin's
    /// kind is free.
    pub(super) async fn call(
        &self,
        callee: &Callee,
        limits: Limits,
        attachments: Arc<Attachments>,
        entry: Entry,
        wait: Wait,
    ) -> Result<sandbox::Called<Answer>, GateError> {
        let (slots, total) = match callee.api.kind() {
            PluginKind::Gate => (&self.gate_slots, GATE_SLOTS),
            PluginKind::Adapter => (&self.adapter_slots, ADAPTER_SLOTS),
        };
        let busy = GateError::Busy {
            kind: callee.api.kind(),
            slots: total,
        };
        let permit = match wait {
            Wait::InOrder => slots.clone().acquire_owned().await.ok(),
            Wait::No => slots.clone().try_acquire_owned().ok(),
        }
        .ok_or(busy)?;
        let call = sandbox::call(
            self.engine.clone(),
            callee.clone(),
            limits,
            attachments,
            entry,
        );
        // The slot is held until the call ends.
        let call = async move {
            let called = call.await;
            drop(permit);
            called
        };
        if ON_PLUGIN_THREADS.try_with(|on| *on).unwrap_or(false) {
            // Already driven by the plugin runtime ([`Plugins::block_on`]):
            // a hop to another of its threads would only add a wake-up.
            return call.await;
        }
        let task = self.runtime().spawn(call);
        task.await.unwrap_or_else(|e| {
            Err(GateError::Trap {
                detail: format!("the call did not complete: {e}"),
            })
        })
    }

    /// What a compiled component says of itself through `describe()`,
    /// before any grant is decided. Blocking.
    pub fn describe(&self, source_name: &str, component: &Component) -> Result<Description, Error> {
        let callee = self.callee(source_name, component, Arc::new(Grants::none()))?;
        self.block_on(self.describe_callee(&callee, source_name))
    }

    /// Checks a compiled component as a plugin: it exports a world this host
    /// serves, `describe()` answers (unless `described` already holds its
    /// answer, e.g. from the registry), what it asks for is granted, and it
    /// imports nothing it was not given. Blocking.
    pub fn prepare(
        &self,
        source_name: &str,
        digest: Digest,
        component: &Component,
        manifest: Manifest,
        described: Option<Description>,
    ) -> Result<Plugin, Error> {
        let unprivileged = self.callee(source_name, component, Arc::new(Grants::none()))?;
        let description = match described {
            Some(d) => d,
            None => self.block_on(self.describe_callee(&unprivileged, source_name))?,
        };
        let api = &unprivileged.api;
        let refused = |detail: String| Error::Refused {
            source_name: source_name.to_string(),
            detail,
        };
        if description.kind != api.kind() {
            return Err(refused(format!(
                "describe() says it is {:?} but it exports the {} world",
                description.kind.as_str(),
                api.kind().as_str()
            )));
        }
        if description.name.is_empty()
            || description.name.len() > 64
            || !description
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(refused(format!(
                "describe() names it {:?}; a plugin name is 1 to 64 letters, digits, '-' or '_'",
                description.name
            )));
        }
        let grants = manifest
            .grants_for(&description.capabilities)
            .map_err(&refused)?;
        capabilities::check_imports(&world::import_names(component), &grants).map_err(&refused)?;
        let grants = Arc::new(grants);
        Ok(Plugin {
            digest,
            callee: Callee {
                name: description.name.as_str().into(),
                grants: grants.clone(),
                contexts: Arc::default(),
                ..unprivileged
            },
            description,
            manifest,
            grants,
        })
    }

    /// `component` ready to call with `grants`.
    pub(super) fn callee(
        &self,
        source_name: &str,
        component: &Component,
        grants: Arc<Grants>,
    ) -> Result<Callee, Error> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| Error::WrongWorld {
                source_name: source_name.to_string(),
                detail: format!("it imports what this host does not provide: {e:#}"),
            })?;
        let api = Api::detect(&pre).map_err(|detail| Error::WrongWorld {
            source_name: source_name.to_string(),
            detail,
        })?;
        Ok(Callee {
            name: source_name.into(),
            pre,
            api: Arc::new(api),
            grants,
            contexts: Arc::default(),
        })
    }

    /// Asks `callee` who it is, with no grants and a fixed budget. Refused
    /// rather than queued when every slot is busy: it runs for a push,
    /// whose client is waiting.
    pub(super) async fn describe_callee(
        &self,
        callee: &Callee,
        source_name: &str,
    ) -> Result<Description, Error> {
        let failed = |reason| Error::Describe {
            source_name: source_name.to_string(),
            reason,
        };
        let called = self
            .call(
                callee,
                DESCRIBE_LIMITS,
                Arc::default(),
                Entry::Describe,
                Wait::No,
            )
            .await
            .map_err(|reason| match reason {
                GateError::Timeout { limit_ms } => Error::Refused {
                    source_name: source_name.to_string(),
                    detail: format!(
                        "describe() did not answer within {limit_ms} ms; it must return its description at once, waiting on nothing"
                    ),
                },
                reason => failed(reason),
            })?;
        match called.value {
            Answer::Described(d) => Description::checked(d).map_err(|detail| Error::Refused {
                source_name: source_name.to_string(),
                detail,
            }),
            _ => Err(failed(answered_otherwise())),
        }
    }

    /// Runs one evaluation in a fresh sandbox, on the plugin threads, once
    /// a slot is free; it ends by the deadline in `limits` whatever the
    /// plugin does.
    pub async fn evaluate(
        &self,
        plugin: &Plugin,
        input: &GateInput,
        limits: Limits,
    ) -> Result<Verdict, GateError> {
        if plugin.callee.api.kind() != PluginKind::Gate {
            return Err(GateError::WrongKind {
                plugin: plugin.description.name.clone(),
            });
        }
        let request = wit::GateRequest {
            candidate: to_wit(&input.candidate),
            incumbent: input.incumbent.as_ref().map(to_wit),
            stage: input.stage.clone(),
            params: input.params.to_string(),
        };
        let called = self
            .call(
                &plugin.callee,
                limits,
                input.attachments.clone(),
                Entry::Evaluate(request),
                Wait::InOrder,
            )
            .await?;
        match called.value {
            Answer::Judged(Ok(v)) => verdict::check(v, called.fuel_used),
            Answer::Judged(Err(message)) => Err(plugin_gave_up(message, called.host_failure)),
            _ => Err(answered_otherwise()),
        }
    }

    /// [`Plugins::evaluate`] for callers outside an async runtime.
    pub fn evaluate_blocking(
        &self,
        plugin: &Plugin,
        input: &GateInput,
        limits: Limits,
    ) -> Result<Verdict, GateError> {
        self.block_on(self.evaluate(plugin, input, limits))
    }

    /// Runs one adapter function in a fresh sandbox, as
    /// [`Plugins::evaluate`] runs a gate.
    pub async fn adapt(
        &self,
        plugin: &Plugin,
        call: AdapterCall,
        limits: Limits,
    ) -> Result<Option<LiveState>, GateError> {
        use world::latest::gatehouse::plugin::types::Target;
        if plugin.callee.api.kind() != PluginKind::Adapter {
            return Err(GateError::NotAnAdapter {
                plugin: plugin.description.name.clone(),
            });
        }
        let target = |environment: String, params: serde_json::Value| Target {
            environment,
            params: params.to_string(),
        };
        let entry = match call {
            AdapterCall::Apply {
                environment,
                params,
                candidate,
            } => Entry::Apply(target(environment, params), to_wit(&candidate)),
            AdapterCall::Current {
                environment,
                params,
            } => Entry::Current(target(environment, params)),
            AdapterCall::SetTraffic {
                environment,
                params,
                canary,
                weight_percent,
            } => Entry::SetTraffic(target(environment, params), to_wit(&canary), weight_percent),
            AdapterCall::Rollback {
                environment,
                params,
                restore,
            } => Entry::Rollback(target(environment, params), restore.as_ref().map(to_wit)),
        };
        let called = self
            .call(&plugin.callee, limits, Arc::default(), entry, Wait::InOrder)
            .await?;
        let adapter_failed = |message| match plugin_gave_up(message, called.host_failure.clone()) {
            GateError::PluginError { message } => GateError::AdapterFailed { message },
            other => other,
        };
        match called.value {
            Answer::Adapted(Ok(None)) => Ok(None),
            Answer::Adapted(Ok(Some(state))) => LiveState::checked(state)
                .map(Some)
                .map_err(|problem| GateError::MalformedAnswer { problem }),
            Answer::Adapted(Err(message)) => Err(adapter_failed(message)),
            _ => Err(answered_otherwise()),
        }
    }

    /// [`Plugins::adapt`] for callers outside an async runtime.
    pub fn adapt_blocking(
        &self,
        plugin: &Plugin,
        call: AdapterCall,
        limits: Limits,
    ) -> Result<Option<LiveState>, GateError> {
        self.block_on(self.adapt(plugin, call, limits))
    }
}

/// A plugin returned `err`: if a host call failed first, that is the reason.
fn plugin_gave_up(message: String, host_failure: Option<sandbox::HostFailure>) -> GateError {
    match host_failure {
        Some(f) => GateError::HostCall {
            capability: f.capability.into(),
            detail: plugin_text(format!("{}; the plugin said: {message}", f.detail)),
        },
        None => GateError::PluginError {
            message: plugin_text(message),
        },
    }
}

/// A plugin answered a call other than the one made: the host's bindings
/// are at fault, never the plugin, but it fails closed all the same.
pub(super) fn answered_otherwise() -> GateError {
    GateError::MalformedAnswer {
        problem: "the plugin answered a different call".into(),
    }
}

fn to_wit(c: &CandidateView) -> wit::Candidate {
    wit::Candidate {
        digest: c.digest.hex(),
        bytes: c.bytes.to_vec(),
        metadata: c.metadata.clone(),
    }
}
