//! A serving service simulated on loopback, for the canary tests. It follows
//! one environment through `WatchConfig`, routes each request between the
//! live configuration and the canary by the sticky rule, mirrors a share of
//! requests to both arms (same request key), and reports what each arm did
//! through `ReportObservations`. How a configuration behaves (errors,
//! latency, answers) is chosen per candidate `revision` by the test.

use gatehouse::client::{Client, fnv1a64, routes_to_canary};
use gatehouse::proto;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How one configuration serves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    pub error_rate: f64,
    pub median_latency_ms: f64,
    /// Share of answers that differ from the healthy answer.
    pub flip_rate: f64,
}

pub const HEALTHY: Behaviour = Behaviour {
    error_rate: 0.01,
    median_latency_ms: 40.0,
    flip_rate: 0.0,
};

/// What the service routes by, as `WatchConfig` last told it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routing {
    pub generation: u64,
    pub active: Option<String>,
    pub canary: Option<String>,
    pub canary_release: u64,
    pub weight_percent: u32,
}

type Behaviours = Arc<dyn Fn(u64) -> Behaviour + Send + Sync>;

struct State {
    routing: Routing,
    behaviour: Behaviours,
    /// Revisions of the active configuration and of the canary.
    active: Option<u64>,
    canary: Option<u64>,
    /// Every configuration seen, in order.
    seen: Vec<Routing>,
    canary_requests: u64,
}

pub struct Service {
    state: Arc<Mutex<State>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Requests per tick, and the tick: 10,000 requests a second.
const PER_TICK: u64 = 50;
const TICK: Duration = Duration::from_millis(5);
/// One request in this many is mirrored to both arms while a canary runs.
const MIRROR_EVERY: u64 = 5;

impl Service {
    /// Starts following `environment`; `behaviour` says how the candidate
    /// with a given `revision` serves (asked again on every request, so a
    /// test may change it while traffic flows).
    pub async fn start(
        client: Client,
        environment: &str,
        behaviour: impl Fn(u64) -> Behaviour + Send + Sync + 'static,
    ) -> Service {
        let state = Arc::new(Mutex::new(State {
            routing: Routing::default(),
            behaviour: Arc::new(behaviour),
            active: None,
            canary: None,
            seen: Vec::new(),
            canary_requests: 0,
        }));
        let mut watch = client
            .environments
            .clone()
            .watch_config(proto::WatchConfigRequest {
                environment: environment.into(),
                after_generation: 0,
            })
            .await
            .expect("watch config")
            .into_inner();
        let follower = {
            let state = state.clone();
            tokio::spawn(async move {
                while let Ok(Some(c)) = watch.message().await {
                    let routing = Routing {
                        generation: c.generation,
                        active: c.active.as_ref().map(|d| d.digest.clone()),
                        canary: c.canary.as_ref().map(|d| d.digest.clone()),
                        canary_release: c.canary.as_ref().map_or(0, |d| d.release_id),
                        weight_percent: c.canary_weight_percent,
                    };
                    let mut s = lock(&state);
                    s.active = c.active.as_ref().map(|d| revision(&d.config));
                    s.canary = c.canary.as_ref().map(|d| revision(&d.config));
                    s.seen.push(routing.clone());
                    s.routing = routing;
                }
            })
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let reporter = {
            let mut canaries = client.canaries.clone();
            tokio::spawn(async move {
                let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
                let _ = canaries.report_observations(stream).await;
            })
        };
        let traffic = {
            let state = state.clone();
            let environment = environment.to_string();
            tokio::spawn(async move {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
                let mut n = 0u64;
                let mut tick = tokio::time::interval(TICK);
                loop {
                    tick.tick().await;
                    let batch = {
                        let mut s = lock(&state);
                        requests(&mut s, &environment, &mut rng, &mut n)
                    };
                    if let Some(batch) = batch
                        && tx.send(batch).await.is_err()
                    {
                        return;
                    }
                }
            })
        };
        Service {
            state,
            tasks: vec![follower, reporter, traffic],
        }
    }

    pub fn routing(&self) -> Routing {
        lock(&self.state).routing.clone()
    }

    /// Every configuration the service was told, in order.
    pub fn seen(&self) -> Vec<Routing> {
        lock(&self.state).seen.clone()
    }

    pub fn canary_requests(&self) -> u64 {
        lock(&self.state).canary_requests
    }

    /// Waits (at most `limit`) until the routing satisfies `pred`.
    pub async fn wait_for(&self, limit: Duration, pred: impl Fn(&Routing) -> bool) -> Routing {
        let deadline = Instant::now() + limit;
        loop {
            let r = self.routing();
            if pred(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "the service's configuration did not reach the expected state within {limit:?}; last: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// One tick of requests, as a batch to report; none before anything is live.
fn requests(
    s: &mut State,
    environment: &str,
    rng: &mut Rng,
    n: &mut u64,
) -> Option<proto::ObservationBatch> {
    let active = (s.behaviour)(s.active?);
    let canary = s
        .routing
        .canary
        .clone()
        .zip(s.canary.map(|r| (s.behaviour)(r)));
    let mut batch = proto::ObservationBatch {
        environment: environment.to_string(),
        release_id: s.routing.canary_release,
        observations: Vec::with_capacity(PER_TICK as usize * 2),
    };
    for _ in 0..PER_TICK {
        *n += 1;
        let key = format!("user-{n}");
        let served = |arm: proto::Arm, b: Behaviour, rng: &mut Rng, keyed: bool| {
            let healthy = fnv1a64(&[key.as_bytes()]) % 4;
            let label = if rng.uniform() < b.flip_rate {
                (healthy + 1) % 4
            } else {
                healthy
            };
            proto::Observation {
                arm: arm as i32,
                request_key: if keyed { key.clone() } else { String::new() },
                latency_ms: rng.lognormal(b.median_latency_ms, 0.3),
                error: rng.uniform() < b.error_rate,
                output_fingerprint: if keyed {
                    format!("label-{label}")
                } else {
                    String::new()
                },
                ..Default::default()
            }
        };
        match &canary {
            Some((_, b)) if n.is_multiple_of(MIRROR_EVERY) => {
                s.canary_requests += 1;
                batch
                    .observations
                    .push(served(proto::Arm::Baseline, active, rng, true));
                batch
                    .observations
                    .push(served(proto::Arm::Canary, *b, rng, true));
            }
            Some((digest, b))
                if routes_to_canary(digest, key.as_bytes(), s.routing.weight_percent) =>
            {
                s.canary_requests += 1;
                batch
                    .observations
                    .push(served(proto::Arm::Canary, *b, rng, false));
            }
            _ => batch
                .observations
                .push(served(proto::Arm::Baseline, active, rng, false)),
        }
    }
    Some(batch)
}

/// The `revision` a test candidate carries (see `common::candidate`).
pub fn revision(config: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(config)
        .ok()
        .and_then(|v| v["revision"].as_u64())
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// xorshift64*: small, seeded, good enough for simulated traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u1, u2) = (self.uniform().max(f64::MIN_POSITIVE), self.uniform());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        median * (sigma * z).exp()
    }
}
