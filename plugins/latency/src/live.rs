//! Live mode: times `requests` calls to the candidate's endpoint.
//!
//! Calls go out in waves of `max_in_flight` through `http::fetch_all`, and
//! each wave is timed with `std::time::Instant`. The host answers a wave
//! only when all of its calls are done, so every call of a wave is given
//! the wave's time: exact with `max_in_flight = 1` (the default), and with
//! more an upper bound on each call (the slowest of its wave), which makes
//! percentiles err high, never low. A call that fails or answers other than
//! 2xx gives no sample and is counted; more than `max_http_errors` of them
//! make the verdict inconclusive.
//!
//! Inside the sandbox the clock is stopped unless the manifest grants
//! `clock`: every call would then take 0 ms. So the live build asks for
//! `"http"` and `"clock"`, and a measurement in which no time passed at all
//! is refused rather than judged. Building requests and tallying answers are
//! pure functions, tested natively; only [`measure`] reaches the host, and
//! it exists only in the build with the `live` feature.

use gatehouse_plugin_sdk::http::{self, Request, Response};

use crate::params::LiveParams;

/// What a live measurement gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// Milliseconds per successful call, in order.
    pub latencies: Vec<f64>,
    /// Calls that failed or answered other than 2xx.
    pub failures: usize,
    /// Why the first of them failed.
    pub first_failure: Option<String>,
}

/// The request every call sends.
pub fn request(live: &LiveParams) -> Request {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut body = Vec::new();
    if let Some(json) = &live.body {
        headers.push(("content-type".to_string(), "application/json".to_string()));
        body = json.to_string().into_bytes();
    }
    headers.extend(live.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    Request {
        method: live.method.clone(),
        url: live.base_url.clone(),
        headers,
        body,
    }
}

impl Measured {
    /// Adds one wave's answers, which took `elapsed_ms` together.
    pub fn record_wave(&mut self, answers: Vec<Result<Response, http::Error>>, elapsed_ms: f64) {
        for answer in answers {
            let failure = match answer {
                Ok(response) if response.is_success() => {
                    self.latencies.push(elapsed_ms);
                    continue;
                }
                Ok(response) => format!("HTTP {}", response.status),
                Err(e) => e.message(),
            };
            self.failures += 1;
            self.first_failure.get_or_insert(failure);
        }
    }

    /// Refuses a measurement in which the clock never moved.
    pub fn check_clock(&self) -> Result<(), String> {
        if !self.latencies.is_empty() && self.latencies.iter().all(|&ms| ms == 0.0) {
            return Err("every live request took 0 ms: the sandbox's clock is stopped; grant the plugin `clock` in its manifest (the live build asks for it)".to_string());
        }
        Ok(())
    }
}

/// Sends `live.requests` calls and times them.
pub fn measure(live: &LiveParams) -> Result<Measured, String> {
    #[cfg(feature = "live")]
    {
        let request = request(live);
        let mut measured = Measured::default();
        let mut left = live.requests;
        while left > 0 {
            let wave = left.min(live.max_in_flight);
            let requests = vec![request.clone(); wave as usize];
            let started = std::time::Instant::now();
            let answers = http::fetch_all(&requests, wave);
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            measured.record_wave(answers, elapsed_ms);
            left -= wave;
        }
        measured.check_clock()?;
        Ok(measured)
    }
    #[cfg(not(feature = "live"))]
    {
        let _ = live;
        Err(NOT_IN_THIS_BUILD.to_string())
    }
}

/// Why a build without the `live` feature refuses live params.
pub const NOT_IN_THIS_BUILD: &str = "this build of latency has no live mode (it would need `http` and `clock`); attach the candidate's latency samples and use `samples`, or push the plugin built with `--features live` with a manifest granting `http` to the endpoint's host and `clock`";

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn live(body: Option<serde_json::Value>) -> LiveParams {
        LiveParams {
            base_url: "http://127.0.0.1:8089/v1/health".to_string(),
            method: "POST".to_string(),
            headers: BTreeMap::from([("authorization".to_string(), "Bearer k".to_string())]),
            body,
            requests: 3,
            max_in_flight: 1,
            max_http_errors: 0.05,
        }
    }

    fn response(status: u16) -> Result<Response, http::Error> {
        Ok(Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    #[test]
    fn requests_carry_method_headers_and_json_body() {
        let request = request(&live(Some(json!({"input": "ping"}))));
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "http://127.0.0.1:8089/v1/health");
        assert_eq!(request.body, br#"{"input":"ping"}"#);
        assert_eq!(request.headers[0].1, "application/json");
        assert_eq!(
            request.headers[1],
            ("authorization".to_string(), "Bearer k".to_string())
        );
        assert!(super::request(&live(None)).body.is_empty());
    }

    #[test]
    fn every_call_of_a_wave_gets_the_wave_time_and_failures_are_counted() {
        let mut measured = Measured::default();
        measured.record_wave(vec![response(200), response(503)], 42.0);
        measured.record_wave(vec![Err(http::Error::Timeout), response(204)], 17.5);
        assert_eq!(measured.latencies, [42.0, 17.5]);
        assert_eq!(measured.failures, 2);
        assert_eq!(measured.first_failure.as_deref(), Some("HTTP 503"));
    }

    #[test]
    fn a_stopped_clock_is_refused() {
        let mut measured = Measured::default();
        measured.record_wave(vec![response(200), response(200)], 0.0);
        let err = measured.check_clock().unwrap_err();
        assert!(err.contains("grant the plugin `clock`"), "{err}");
        measured.record_wave(vec![response(200)], 3.0);
        assert!(measured.check_clock().is_ok());
    }

    #[test]
    fn off_wasm_or_without_the_feature_measuring_fails_with_the_fix() {
        let err = measure(&live(None)).err().unwrap_or_default();
        if cfg!(feature = "live") {
            // Off WebAssembly every request fails; nothing is timed.
            assert!(err.is_empty(), "{err}");
        } else {
            assert!(err.contains("--features live"), "{err}");
        }
    }
}
