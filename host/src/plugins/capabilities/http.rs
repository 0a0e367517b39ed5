//! Capability "http": outbound requests to allowlisted hosts only, bounded
//! in time and size.
//!
//! Grant: `"http"` in the manifest's capabilities and an `[http]` table:
//! `allow_hosts` (`"host"` for any port, or `"host:port"`), and optional
//! `timeout_ms`, `max_request_bytes`, `max_response_bytes`. Link:
//! `gatehouse:plugin/http`. Prepare: the policy is shared by every call; each
//! request's time limit is the smaller of the manifest's and what is left of
//! the call's deadline, so time spent waiting on the network counts against
//! the gate's timeout like any other.
//!
//! Redirects are not followed (the next hop could be off the allowlist), and
//! proxies from the daemon's environment are not used.
//!
//! What the host buffers of responses before handing them to the plugin
//! counts against the call's memory budget, beside the plugin's own
//! memories: a `fetch-all` of many large answers fails the call as out of
//! memory instead of growing the daemon.

use crate::plugins::sandbox::{CallState, HostBudget, HostFailure};
use crate::plugins::world::latest::gatehouse::plugin::http::{Error, Host, Request, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::http;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGrant {
    pub allow_hosts: Vec<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: u64,
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn default_max_request_bytes() -> u64 {
    1 << 20
}
fn default_max_response_bytes() -> u64 {
    4 << 20
}

/// Checks the manifest's `[http]` table.
pub fn check(grant: &HttpGrant) -> Result<(), String> {
    if grant.allow_hosts.is_empty() {
        return Err("http: allow_hosts is empty; list the hosts the plugin may reach".into());
    }
    for entry in &grant.allow_hosts {
        let ok = !entry.is_empty()
            && !entry.contains('/')
            && !entry.contains('*')
            && entry.parse::<http::uri::Authority>().is_ok();
        if !ok {
            return Err(format!(
                "http: allow_hosts entry {entry:?} is not a host or host:port (no scheme, path or wildcard)"
            ));
        }
    }
    if grant.timeout_ms == 0 || grant.max_response_bytes == 0 {
        return Err("http: timeout_ms and max_response_bytes must be above 0".into());
    }
    Ok(())
}

/// The grant, ready for calls.
#[derive(Debug)]
pub struct Policy {
    allow_hosts: Vec<String>,
    timeout: Duration,
    max_request_bytes: u64,
    max_response_bytes: u64,
}

impl From<&HttpGrant> for Policy {
    fn from(g: &HttpGrant) -> Policy {
        Policy {
            allow_hosts: g
                .allow_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            timeout: Duration::from_millis(g.timeout_ms),
            max_request_bytes: g.max_request_bytes,
            max_response_bytes: g.max_response_bytes,
        }
    }
}

impl Policy {
    /// Whether `uri`'s host (and port) is on the allowlist; the `host:port`
    /// it checked, for messages.
    fn allows(&self, uri: &http::Uri) -> Result<String, Error> {
        let scheme = uri.scheme_str().unwrap_or_default();
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => {
                return Err(Error::InvalidRequest(format!(
                    "URL {uri} must start with http:// or https://"
                )));
            }
        };
        let Some(host) = uri.host() else {
            return Err(Error::InvalidRequest(format!("URL {uri} has no host")));
        };
        let host = host.to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(default_port);
        let with_port = format!("{host}:{port}");
        if self
            .allow_hosts
            .iter()
            .any(|entry| *entry == host || *entry == with_port)
        {
            Ok(with_port)
        } else {
            Err(Error::NotAllowed(with_port))
        }
    }

    /// Sends `request` within `deadline`, buffering no more of the answer
    /// than `budget` allows.
    fn send(
        &self,
        request: Request,
        deadline: Instant,
        budget: &HostBudget,
    ) -> Result<Result<Response, Error>, OverBudget> {
        Ok(match self.prepare(request, deadline) {
            Ok((agent, outgoing)) => self.exchange(agent, outgoing, budget)?,
            Err(e) => Err(e),
        })
    }

    /// The request to send and an agent bounded by what is left of the
    /// call's time.
    fn prepare(
        &self,
        request: Request,
        deadline: Instant,
    ) -> Result<(ureq::Agent, http::Request<Vec<u8>>), Error> {
        let uri: http::Uri = request
            .url
            .parse()
            .map_err(|e| Error::InvalidRequest(format!("URL {:?}: {e}", request.url)))?;
        self.allows(&uri)?;
        if request.body.len() as u64 > self.max_request_bytes {
            return Err(Error::InvalidRequest(format!(
                "body of {} bytes is over the {}-byte limit",
                request.body.len(),
                self.max_request_bytes
            )));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = self.timeout.min(left);
        if timeout.is_zero() {
            return Err(Error::Timeout);
        }
        let method: http::Method = request
            .method
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| Error::InvalidRequest(format!("method {:?}", request.method)))?;
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let outgoing = builder
            .body(request.body)
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into();
        Ok((agent, outgoing))
    }

    fn exchange(
        &self,
        agent: ureq::Agent,
        outgoing: http::Request<Vec<u8>>,
        budget: &HostBudget,
    ) -> Result<Result<Response, Error>, OverBudget> {
        let mut answer = match agent.run(outgoing) {
            Ok(answer) => answer,
            Err(e) => return Ok(Err(transport(e))),
        };
        let status = answer.status().as_u16();
        let headers = answer
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut reader = answer
            .body_mut()
            .with_config()
            .limit(self.max_response_bytes)
            .reader();
        let mut body = Vec::new();
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let read = match std::io::Read::read(&mut reader, &mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let e = match e.downcast::<ureq::Error>() {
                        Ok(e) => transport(e),
                        Err(e) => Error::Transport(e.to_string()),
                    };
                    return Ok(Err(e));
                }
            };
            budget.take(read)?;
            body.extend_from_slice(&chunk[..read]);
        }
        Ok(Ok(Response {
            status,
            headers,
            body,
        }))
    }
}

/// Buffering an answer would pass the call's memory budget.
#[derive(Debug)]
pub struct OverBudget;

fn transport(e: ureq::Error) -> Error {
    match e {
        ureq::Error::Timeout(_) => Error::Timeout,
        ureq::Error::BodyExceedsLimit(limit) => Error::TooLarge(limit),
        other => Error::Transport(other.to_string()),
    }
}

/// Requests one `fetch-all` keeps in flight at most, whatever the plugin asks.
pub const MAX_IN_FLIGHT: u32 = 16;

impl Host for CallState {
    async fn fetch(&mut self, request: Request) -> wasmtime::Result<Result<Response, Error>> {
        let mut answers = self.fetch_all(vec![request], 1).await?;
        Ok(answers
            .pop()
            .unwrap_or(Err(Error::Transport("not sent".into()))))
    }

    async fn fetch_all(
        &mut self,
        requests: Vec<Request>,
        max_in_flight: u32,
    ) -> wasmtime::Result<Vec<Result<Response, Error>>> {
        let whats: Vec<String> = requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.url))
            .collect();
        let workers = max_in_flight.clamp(1, MAX_IN_FLIGHT) as usize;
        let policy = self.grants.http.clone();
        let deadline = self.deadline;
        let budget = self.host_budget();
        // Each request is sent on a blocking thread, bounded by what is left
        // of the call's deadline; if the call is dropped at its deadline,
        // the threads end by that same deadline.
        let limit = Arc::new(tokio::sync::Semaphore::new(workers));
        let mut sent = tokio::task::JoinSet::new();
        for (index, request) in requests.into_iter().enumerate() {
            let (policy, budget, limit) = (policy.clone(), budget.clone(), limit.clone());
            sent.spawn(async move {
                let _slot = limit.acquire_owned().await;
                let answer = tokio::task::spawn_blocking(move || {
                    send(policy.as_deref(), request, deadline, &budget)
                })
                .await
                .unwrap_or_else(|e| Ok(Err(Error::Transport(e.to_string()))));
                (index, answer)
            });
        }
        let mut answers: Vec<Option<Result<Response, Error>>> =
            std::iter::repeat_with(|| None).take(whats.len()).collect();
        while let Some(done) = sent.join_next().await {
            let Ok((index, answer)) = done else { continue };
            match answer {
                Ok(answer) => answers[index] = Some(answer),
                // Stop at once: the tasks still running end with the set.
                Err(OverBudget) => return Err(budget.exhausted()),
            }
        }
        let mut out = Vec::with_capacity(answers.len());
        for (what, answer) in whats.iter().zip(answers) {
            let answer = answer.unwrap_or(Err(Error::Transport("not sent".into())));
            if let Err(e) = &answer {
                self.note_failure(what, e);
            }
            out.push(answer);
        }
        Ok(out)
    }
}

fn send(
    policy: Option<&Policy>,
    request: Request,
    deadline: Instant,
    budget: &HostBudget,
) -> Result<Result<Response, Error>, OverBudget> {
    match policy {
        Some(policy) => policy.send(request, deadline, budget),
        // Not linked for such a plugin (see `check_imports`); refuse anyway
        // rather than trust that.
        None => Ok(Err(Error::NotAllowed("any host".into()))),
    }
}

impl CallState {
    /// Keeps the latest failed request, so a plugin that then gives up is
    /// reported for that reason.
    fn note_failure(&mut self, what: &str, e: &Error) {
        let detail = match e {
            Error::NotAllowed(host) => {
                format!(
                    "{what}: host {host} is not on the plugin's allowlist (manifest [http] allow_hosts)"
                )
            }
            Error::InvalidRequest(why) => format!("{what}: invalid request: {why}"),
            Error::Timeout => format!("{what}: no answer in time"),
            Error::TooLarge(limit) => {
                format!(
                    "{what}: response over the {limit}-byte limit (manifest [http] max_response_bytes)"
                )
            }
            Error::Transport(why) => format!("{what}: {why}"),
        };
        self.host_failure = Some(HostFailure {
            capability: "http",
            detail,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> Policy {
        Policy::from(&HttpGrant {
            allow_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            timeout_ms: 1000,
            max_request_bytes: 10,
            max_response_bytes: 100,
        })
    }

    fn uri(s: &str) -> http::Uri {
        s.parse().expect("uri")
    }

    #[test]
    fn allowlist_matches_host_or_host_and_port() {
        let p = policy(&["api.example.com", "127.0.0.1:8080"]);
        assert!(p.allows(&uri("https://api.example.com/v1")).is_ok());
        assert!(p.allows(&uri("http://API.example.com:9000/")).is_ok());
        assert!(p.allows(&uri("http://127.0.0.1:8080/x")).is_ok());
        assert!(matches!(
            p.allows(&uri("http://127.0.0.1:8081/x")),
            Err(Error::NotAllowed(h)) if h == "127.0.0.1:8081"
        ));
        assert!(matches!(
            p.allows(&uri("http://api.example.com.evil.test/")),
            Err(Error::NotAllowed(_))
        ));
        assert!(matches!(
            p.allows(&uri("ftp://api.example.com/")),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn manifest_hosts_must_be_plain_authorities() {
        let grant = |h: &str| HttpGrant {
            allow_hosts: vec![h.to_string()],
            timeout_ms: 1,
            max_request_bytes: 1,
            max_response_bytes: 1,
        };
        assert!(check(&grant("api.example.com:443")).is_ok());
        assert!(check(&grant("https://api.example.com")).is_err());
        assert!(check(&grant("*.example.com")).is_err());
    }

    #[test]
    fn oversized_body_and_spent_deadline_are_refused_before_sending() {
        let p = policy(&["127.0.0.1"]);
        let request = |body: &[u8]| Request {
            method: "POST".into(),
            url: "http://127.0.0.1:9/".into(),
            headers: Vec::new(),
            body: body.to_vec(),
        };
        let later = Instant::now() + Duration::from_secs(5);
        assert!(matches!(
            p.prepare(request(&[0; 11]), later),
            Err(Error::InvalidRequest(why)) if why.contains("over the 10-byte limit")
        ));
        assert!(matches!(
            p.prepare(request(b""), Instant::now()),
            Err(Error::Timeout)
        ));
    }
}
