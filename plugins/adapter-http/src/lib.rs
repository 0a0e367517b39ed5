//! Environment adapter that places configurations through a service's admin
//! HTTP API, for services that take their configuration over the network.
//!
//! # The contract a service implements
//!
//! Digests are the lowercase hex sha256 of a configuration's bytes; bodies
//! are the configuration's bytes as submitted (JSON). Any 2xx answer is
//! success.
//!
//! | request | body | meaning |
//! | --- | --- | --- |
//! | `GET {base}/config/{environment}` | | answer `{"active": DIGEST\|null, "canary": DIGEST\|null, "canary_weight_percent": 0..100}`; 404 when the service holds nothing for the environment yet |
//! | `PUT {base}/config/{environment}/active` | the configuration | serve it; header `x-gatehouse-digest` names it |
//! | `PUT {base}/config/{environment}/canary?weight=N` | the canary | send N% of traffic to it; header `x-gatehouse-digest` |
//! | `POST {base}/config/{environment}/rollback` | the configuration to restore, or empty | weight 0, drop the canary, serve the body if any; header `x-gatehouse-digest` when there is a body |
//!
//! `{environment}` is the pipeline's environment name, percent-encoded. With
//! `token` set, every request carries `authorization: <token>`. A service
//! should treat a repeated request as a no-op: the adapter itself reads the
//! live state first and skips a write the service already reflects, but a
//! crash between the write and its answer makes the daemon repeat it. A 4xx
//! answer is final and its body is quoted in the error, so a service should
//! say there why it refused; transport errors and 5xx answers are retried
//! ([`retry`]).
//!
//! # Params
//!
//! ```toml
//! adapter = "adapter-http"
//! adapter_params = { base_url = "https://triage.internal:9443/admin", token = "Bearer s3cret", retries = 3, backoff_ms = 100 }
//! ```
//!
//! `base_url` is required; `token` is optional; `retries` (attempts after the
//! first, default 3, at most 10) and `backoff_ms` (wait before the first
//! retry, doubling after, default 100) must leave the waits inside the
//! adapter call's deadline: 100 + 200 + 400 ms by default. The admin
//! allowlists the service's host in the manifest pushed with the plugin:
//!
//! ```toml
//! capabilities = ["http"]
//!
//! [http]
//! allow_hosts = ["triage.internal:9443"]
//! timeout_ms = 5000
//! ```
//!
//! The adapter needs no "clock": back-off sleeps for real without it.

pub mod api;
pub mod client;
pub mod params;
pub mod retry;

use std::time::Duration;

use gatehouse_plugin_sdk::http::{self, Error, Request, Response};
use gatehouse_plugin_sdk::serde_json::json;
use gatehouse_plugin_sdk::{Adapter, Candidate, Description, LiveState, Target, export_adapter};

use client::Client;
use params::Params;
use retry::Transport;

/// The daemon's HTTP, and a real pause.
struct HostTransport;

impl Transport for HostTransport {
    fn send(&mut self, request: &Request) -> Result<Response, Error> {
        http::fetch(request)
    }

    fn sleep(&mut self, pause: Duration) {
        std::thread::sleep(pause);
    }
}

fn with_client<R>(
    target: &Target,
    call: impl FnOnce(&mut Client<'_, HostTransport>) -> Result<R, String>,
) -> Result<R, String> {
    let params = Params::parse(&target.params)?;
    call(&mut Client::new(params, &mut HostTransport))
}

/// The exported adapter.
pub struct HttpAdapter;

impl Adapter for HttpAdapter {
    type Params = Params;

    fn describe() -> Description {
        Description::adapter(
            "adapter-http",
            env!("CARGO_PKG_VERSION"),
            "Places configurations through a service's admin HTTP API, idempotent by digest",
        )
        .with_params_schema(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "adapter-http params",
            "type": "object",
            "additionalProperties": false,
            "required": ["base_url"],
            "properties": {
                "base_url": {
                    "description": "The service's admin API, http:// or https://, without /config/...",
                    "type": "string"
                },
                "token": {
                    "description": "Value of the authorization header, e.g. \"Bearer s3cret\".",
                    "type": "string"
                },
                "retries": {
                    "description": "Attempts after the first, on transport errors and 5xx answers.",
                    "type": "integer",
                    "minimum": 0,
                    "maximum": params::MAX_RETRIES,
                    "default": 3
                },
                "backoff_ms": {
                    "description": "Wait before the first retry, doubling for each one after.",
                    "type": "integer",
                    "minimum": 0,
                    "default": 100
                }
            }
        }))
        .with_capability("http")
    }

    fn apply(target: Target, candidate: Candidate) -> Result<(), String> {
        with_client(&target, |c| c.apply(&target.environment, &candidate))
    }

    fn current(target: Target) -> Result<LiveState, String> {
        with_client(&target, |c| c.current(&target.environment))
    }

    fn set_traffic(target: Target, canary: Candidate, weight_percent: u8) -> Result<(), String> {
        with_client(&target, |c| {
            c.set_traffic(&target.environment, &canary, weight_percent)
        })
    }

    fn rollback(target: Target, restore: Option<Candidate>) -> Result<(), String> {
        with_client(&target, |c| {
            c.rollback(&target.environment, restore.as_ref())
        })
    }
}

export_adapter!(HttpAdapter);

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::PluginKind;
    use gatehouse_plugin_sdk::testing::{candidate, target};

    use super::*;

    #[test]
    fn description_asks_for_http_only() {
        let description = HttpAdapter::describe();
        assert_eq!(
            (description.name.as_str(), description.kind),
            ("adapter-http", PluginKind::Adapter)
        );
        assert_eq!(description.capabilities, ["http"]);
        let schema: serde_json::Value =
            serde_json::from_str(&description.params_schema).expect("schema is JSON");
        assert_eq!(schema["required"][0], "base_url");
    }

    #[test]
    fn bad_params_fail_before_any_request() {
        let err = HttpAdapter::apply(target("prod", "{}"), candidate("{}")).unwrap_err();
        assert!(err.contains("base_url"), "{err}");
    }

    #[test]
    fn off_webassembly_calls_fail_with_the_transport_error_after_retries() {
        let params = r#"{"base_url": "http://127.0.0.1:1", "retries": 1, "backoff_ms": 0}"#;
        let err = HttpAdapter::current(target("prod", params)).unwrap_err();
        assert!(err.contains("failed 2 times"), "{err}");
        assert!(err.contains("off WebAssembly"), "{err}");
    }
}
