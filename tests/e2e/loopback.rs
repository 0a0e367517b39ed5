//! Small HTTP/1.1 services on 127.0.0.1 for the end-to-end tests of the
//! plugins that reach the network: an OpenAI-compatible model endpoint
//! (golden-eval and latency in live mode) and a serving service's admin API
//! (adapter-http). One request per connection. Every read is bounded in
//! size and time, and each service stops by itself after `LIFETIME` or
//! `MAX_CONNECTIONS` connections, whichever comes first, so a test that
//! fails half-way leaves nothing listening.

use gatehouse::digest::Digest;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a service accepts connections.
const LIFETIME: Duration = Duration::from_secs(300);
/// Connections a service accepts before it stops.
const MAX_CONNECTIONS: u64 = 20_000;
/// Largest request (head and body) a service reads.
const MAX_REQUEST_BYTES: usize = 4 << 20;
/// How long a service waits for a request to arrive in full.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One request as a service read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, e.g. `/admin/config/production/canary?weight=5`.
    pub target: String,
    /// Names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A status and a JSON (or empty) body.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
        }
    }
}

/// Reads one request, or `None` if the peer sent garbage, too much, or
/// not all of it in time.
async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 || buf.len() + n > MAX_REQUEST_BYTES {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = std::str::from_utf8(&buf[..end]).ok()?;
            let mut lines = head.split("\r\n");
            let mut start = lines.next()?.split(' ');
            let (method, target) = (start.next()?.to_string(), start.next()?.to_string());
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
                .collect();
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Some(Request {
                    method,
                    target,
                    headers,
                    body: buf[end + 4..end + 4 + length].to_vec(),
                });
            }
        }
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

async fn write_reply(socket: &mut TcpStream, reply: &Reply) {
    let response = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        reply.status,
        if reply.status < 400 { "OK" } else { "Error" },
        reply.body.len(),
        reply.body
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// Requests being answered now, and the most seen at once.
#[derive(Clone, Default)]
pub struct InFlight {
    now: Arc<AtomicU64>,
    most: Arc<AtomicU64>,
}

impl InFlight {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    /// The most requests the service was answering at the same time.
    pub fn most(&self) -> u64 {
        self.most.load(Ordering::SeqCst)
    }
}

/// Serves on a fresh loopback port: each request is answered by `handle`
/// (given the request and its number, from 1) after `delay`. Returns
/// `host:port` and the in-flight count.
pub async fn serve(
    delay: Duration,
    handle: impl Fn(&Request, u64) -> Reply + Send + Sync + 'static,
) -> (String, InFlight) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let handle = Arc::new(handle);
    let in_flight = InFlight::default();
    let counting = in_flight.clone();
    tokio::spawn(async move {
        let stop = Instant::now() + LIFETIME;
        for n in 1..=MAX_CONNECTIONS {
            let left = stop.saturating_duration_since(Instant::now());
            let Ok(Ok((mut socket, _))) = tokio::time::timeout(left, listener.accept()).await
            else {
                return;
            };
            let (handle, in_flight) = (handle.clone(), counting.clone());
            tokio::spawn(async move {
                let Some(request) = read_request(&mut socket).await else {
                    return;
                };
                in_flight.enter();
                tokio::time::sleep(delay).await;
                let reply = handle(&request, n);
                // Counted out before the reply is written: the client can
                // send its next request only once it has read this reply,
                // and counting out after the write let that next request
                // be counted in first, one too many, on a busy machine.
                in_flight.leave();
                write_reply(&mut socket, &reply).await;
            });
        }
    });
    (format!("127.0.0.1:{}", addr.port()), in_flight)
}

/// An OpenAI-compatible chat completions endpoint on 127.0.0.1.
pub struct ModelEndpoint {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Requests answered or failed so far.
    pub served: Arc<AtomicU64>,
    pub in_flight: InFlight,
}

/// A model endpoint that answers each case of `golden` (JSON lines with
/// `input` and `expected`) with its expected label, `other` to anything
/// else, after `delay`; every `fail_every`-th request (0: none) fails with
/// a 500.
pub async fn model_endpoint(golden: &[u8], fail_every: u64, delay: Duration) -> ModelEndpoint {
    let answers: HashMap<String, String> = std::str::from_utf8(golden)
        .expect("golden dataset is UTF-8")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let case: serde_json::Value = serde_json::from_str(l).expect("golden case");
            let expected = match &case["expected"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a[0].as_str().unwrap_or_default().to_string(),
                other => other.to_string(),
            };
            let input = case["input"].as_str().expect("golden input").to_string();
            (input, expected)
        })
        .collect();
    let served = Arc::new(AtomicU64::new(0));
    let count = served.clone();
    let (host, in_flight) = serve(delay, move |request, _| {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        if fail_every > 0 && n.is_multiple_of(fail_every) {
            return Reply::new(500, r#"{"error":"overloaded"}"#);
        }
        let asked: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let prompt = asked["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default();
        // The template ends with the ticket: find the case it asks about.
        let label = answers
            .iter()
            .find(|(input, _)| prompt.ends_with(input.as_str()))
            .map(|(_, l)| l.as_str())
            .unwrap_or("other");
        let answer =
            serde_json::json!({"choices": [{"message": {"role": "assistant", "content": label}}]});
        Reply::new(200, answer.to_string())
    })
    .await;
    ModelEndpoint {
        host,
        served,
        in_flight,
    }
}

/// What the admin API answers with, whatever was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Healthy.
    None,
    /// 503 to this many more requests, then healthy: a restart.
    Next(u32),
    /// 500 to everything: the service's store is gone.
    Always,
}

/// A configuration the service serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub digest: String,
    pub bytes: Vec<u8>,
}

/// One environment as the service holds it.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub active: Option<Placed>,
    pub canary: Option<Placed>,
    pub canary_weight: u8,
}

/// A request the admin API saw, and its answer.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    pub target: String,
    pub digest: Option<String>,
    pub body: Vec<u8>,
    pub status: u16,
}

/// The state behind the admin API.
#[derive(Debug)]
pub struct Service {
    pub environments: BTreeMap<String, Environment>,
    pub seen: Vec<Seen>,
    pub outage: Outage,
}

/// A serving service's admin API on 127.0.0.1, as adapter-http's crate
/// documents it, under `/admin`; it requires `authorization: TOKEN`.
#[derive(Clone)]
pub struct AdminApi {
    /// `127.0.0.1:PORT`.
    pub host: String,
    state: Arc<Mutex<Service>>,
}

impl AdminApi {
    pub const TOKEN: &'static str = "Bearer admin-secret";

    pub async fn start() -> AdminApi {
        let state = Arc::new(Mutex::new(Service {
            environments: BTreeMap::new(),
            seen: Vec::new(),
            outage: Outage::None,
        }));
        let shared = state.clone();
        let (host, _) = serve(Duration::ZERO, move |request, _| {
            let mut service = shared.lock().unwrap_or_else(|p| p.into_inner());
            let reply = answer(&mut service, request);
            service.seen.push(Seen {
                at: Instant::now(),
                method: request.method.clone(),
                target: request.target.clone(),
                digest: request.header("x-gatehouse-digest").map(str::to_string),
                body: request.body.clone(),
                status: reply.status,
            });
            reply
        })
        .await;
        AdminApi { host, state }
    }

    pub fn lock(&self) -> MutexGuard<'_, Service> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The digest the service serves in `environment`.
    pub fn active(&self, environment: &str) -> Option<String> {
        self.lock()
            .environments
            .get(environment)
            .and_then(|e| e.active.as_ref())
            .map(|p| p.digest.clone())
    }

    /// Requests that changed (or asked to change) something: not GETs.
    pub fn writes(&self) -> Vec<Seen> {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.method != "GET")
            .cloned()
            .collect()
    }
}

/// The body of a write, checked against the digest it names, as a real
/// service would before serving it.
fn placed(request: &Request) -> Result<Placed, Reply> {
    let digest = request
        .header("x-gatehouse-digest")
        .ok_or_else(|| Reply::new(400, r#"{"error":"x-gatehouse-digest is missing"}"#))?;
    if Digest::of(&request.body).hex() != digest {
        return Err(Reply::new(
            400,
            r#"{"error":"the body does not hash to x-gatehouse-digest"}"#,
        ));
    }
    Ok(Placed {
        digest: digest.to_string(),
        bytes: request.body.clone(),
    })
}

fn answer(service: &mut Service, request: &Request) -> Reply {
    match service.outage {
        Outage::None => {}
        Outage::Next(n) => {
            service.outage = if n > 1 {
                Outage::Next(n - 1)
            } else {
                Outage::None
            };
            return Reply::new(503, r#"{"error":"restarting"}"#);
        }
        Outage::Always => return Reply::new(500, r#"{"error":"database unavailable"}"#),
    }
    if request.header("authorization") != Some(AdminApi::TOKEN) {
        return Reply::new(401, r#"{"error":"unknown token"}"#);
    }
    let Some(rest) = request.target.strip_prefix("/admin/config/") else {
        return Reply::new(404, r#"{"error":"no such route"}"#);
    };
    let (env, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let write = |service: &mut Service, f: &dyn Fn(&mut Environment)| {
        f(service.environments.entry(env.to_string()).or_default());
        Reply::new(204, "")
    };
    match (request.method.as_str(), path) {
        ("GET", "") => match service.environments.get(env) {
            None => Reply::new(404, r#"{"error":"nothing placed yet"}"#),
            Some(e) => Reply::new(
                200,
                serde_json::json!({
                    "active": e.active.as_ref().map(|p| &p.digest),
                    "canary": e.canary.as_ref().map(|p| &p.digest),
                    "canary_weight_percent": e.canary_weight,
                })
                .to_string(),
            ),
        },
        ("PUT", "active") => match placed(request) {
            Ok(p) => write(service, &|e| {
                if e.canary.as_ref().is_some_and(|c| c.digest == p.digest) {
                    e.canary = None;
                    e.canary_weight = 0;
                }
                e.active = Some(p.clone());
            }),
            Err(refused) => refused,
        },
        ("PUT", "canary") => {
            let Some(weight) = query
                .strip_prefix("weight=")
                .and_then(|w| w.parse::<u8>().ok())
                .filter(|w| *w <= 100)
            else {
                return Reply::new(400, r#"{"error":"weight must be 0 to 100"}"#);
            };
            match placed(request) {
                Ok(p) => write(service, &|e| {
                    e.canary = Some(p.clone());
                    e.canary_weight = weight;
                }),
                Err(refused) => refused,
            }
        }
        ("POST", "rollback") => {
            let restore = if request.body.is_empty() {
                None
            } else {
                match placed(request) {
                    Ok(p) => Some(p),
                    Err(refused) => return refused,
                }
            };
            write(service, &|e| {
                e.canary = None;
                e.canary_weight = 0;
                if let Some(p) = &restore {
                    e.active = Some(p.clone());
                }
            })
        }
        _ => Reply::new(404, r#"{"error":"no such route"}"#),
    }
}
