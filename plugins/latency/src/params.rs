//! The gate's params: where the samples come from, the SLOs, and how far
//! the candidate may fall behind the incumbent. Checked before anything is
//! read or requested, so a wrong param is an error naming it rather than a
//! surprising verdict.
//!
//! Rules: at least one bar (an SLO or `max_regression_pct`) is required, so
//! the gate never passes by judging nothing. `samples` and `live` exclude
//! each other.

mod schema;

use std::collections::BTreeMap;
use std::fmt;

use gatehouse_plugin_sdk::{ParamError, data};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::percentile::Percentile;

pub use schema::schema;

/// Where the candidate's samples are read from unless `live` is set.
pub const DEFAULT_SAMPLES: &str = "attachment:latency.jsonl";
/// What CI attached when the incumbent was released.
pub const DEFAULT_INCUMBENT_SAMPLES: &str = "incumbent-attachment:latency.jsonl";
/// Confidence of the percentiles' intervals.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;
/// Significance level of the regression test.
pub const DEFAULT_ALPHA: f64 = 0.01;
/// Requests a live measurement sends.
pub const DEFAULT_REQUESTS: u32 = 50;
/// Most live requests a measurement may send.
pub const MAX_REQUESTS: u32 = 100_000;
/// Requests in flight at once in a live measurement; 1 times each call alone.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1;
/// Most requests in flight the gate asks for; the host may lower it further.
pub const MAX_IN_FLIGHT_LIMIT: u32 = 16;
/// Share of live requests that may fail before the verdict is inconclusive.
pub const DEFAULT_MAX_HTTP_ERRORS: f64 = 0.05;

/// Params from the pipeline, e.g. `{"p95_ms": 800, "p99_ms": 1000}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Data source of the candidate's samples; `DEFAULT_SAMPLES` when unset
    /// and `live` is not set either.
    #[serde(default)]
    pub samples: Option<String>,
    /// Data source of the incumbent's samples.
    #[serde(default = "default_incumbent_samples")]
    pub incumbent_samples: String,
    /// Measure the candidate's endpoint instead of reading samples.
    #[serde(default)]
    pub live: Option<LiveParams>,
    #[serde(default)]
    pub p50_ms: Option<f64>,
    #[serde(default)]
    pub p95_ms: Option<f64>,
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// Confidence of each percentile's interval.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Largest rise over the incumbent, in percent, per percentile.
    #[serde(default)]
    pub max_regression_pct: Option<MaxRegression>,
    /// Significance level of the one-sided Mann-Whitney test.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The outcome when a percentile meets its SLO but its interval does not.
    #[serde(default)]
    pub when_uncertain: WhenUncertain,
}

/// The candidate's endpoint, for live mode.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveParams {
    /// `http://` or `https://` URL requested as is.
    pub base_url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Request headers, e.g. `{"authorization": "Bearer ..."}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body, sent with `content-type: application/json`.
    #[serde(default)]
    pub body: Option<Value>,
    /// Requests to send.
    #[serde(default = "default_requests")]
    pub requests: u32,
    /// Requests in flight at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    /// Share of failed requests above which the verdict is inconclusive.
    #[serde(default = "default_max_http_errors")]
    pub max_http_errors: f64,
}

/// `max_regression_pct`: one bar for every percentile, or one each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxRegression(pub [Option<f64>; 3]);

/// The table form of [`MaxRegression`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct PerPercentile {
    #[serde(default)]
    p50: Option<f64>,
    #[serde(default)]
    p95: Option<f64>,
    #[serde(default)]
    p99: Option<f64>,
}

impl<'de> Deserialize<'de> for MaxRegression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = MaxRegression;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a percentage for every percentile, or a table such as { p99 = 20 }")
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<MaxRegression, E> {
                Ok(MaxRegression([Some(v); 3]))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MaxRegression, E> {
                self.visit_f64(v as f64)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MaxRegression, E> {
                self.visit_f64(v as f64)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MaxRegression, A::Error> {
                let each = PerPercentile::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(MaxRegression([each.p50, each.p95, each.p99]))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

/// What a percentile that meets its SLO only on the point estimate gives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenUncertain {
    /// Fail closed: the gate could not be sure, so a blocking gate stops.
    #[default]
    Inconclusive,
    /// Let it through with a warning.
    Warn,
}

fn default_incumbent_samples() -> String {
    DEFAULT_INCUMBENT_SAMPLES.to_string()
}
fn default_confidence() -> f64 {
    DEFAULT_CONFIDENCE
}
fn default_alpha() -> f64 {
    DEFAULT_ALPHA
}
fn default_method() -> String {
    "GET".to_string()
}
fn default_requests() -> u32 {
    DEFAULT_REQUESTS
}
fn default_max_in_flight() -> u32 {
    DEFAULT_MAX_IN_FLIGHT
}
fn default_max_http_errors() -> f64 {
    DEFAULT_MAX_HTTP_ERRORS
}

impl Params {
    /// The data source of the candidate's samples, when they are read.
    pub fn samples_source(&self) -> Option<&str> {
        match (&self.samples, &self.live) {
            (Some(source), _) => Some(source),
            (None, None) => Some(DEFAULT_SAMPLES),
            (None, Some(_)) => None,
        }
    }

    /// The SLO of `p`, in milliseconds, if set.
    pub fn slo(&self, p: Percentile) -> Option<f64> {
        match p {
            Percentile::P50 => self.p50_ms,
            Percentile::P95 => self.p95_ms,
            Percentile::P99 => self.p99_ms,
        }
    }

    /// The largest rise of `p` over the incumbent, in percent, if set.
    pub fn max_regression(&self, p: Percentile) -> Option<f64> {
        self.max_regression_pct.and_then(|m| m.0[p.index()])
    }
}

impl gatehouse_plugin_sdk::Params for Params {
    fn check(&self) -> Result<(), ParamError> {
        for p in Percentile::ALL {
            if let Some(slo) = self.slo(p)
                && !(slo.is_finite() && slo > 0.0)
            {
                return Err(ParamError::new(
                    p.slo_param(),
                    format!(
                        "{slo} is not a positive number of milliseconds; set the most {} latency allowed, e.g. 800",
                        p.name()
                    ),
                ));
            }
            if let Some(pct) = self.max_regression(p)
                && !(pct.is_finite() && pct >= 0.0)
            {
                return Err(ParamError::new(
                    "max_regression_pct",
                    format!(
                        "{pct} for {} is not a percentage of 0 or more; set how far it may rise over the incumbent's, e.g. 20",
                        p.name()
                    ),
                ));
            }
        }
        let any_slo = Percentile::ALL.iter().any(|&p| self.slo(p).is_some());
        let any_regression = Percentile::ALL
            .iter()
            .any(|&p| self.max_regression(p).is_some());
        if !any_slo && !any_regression {
            return Err(ParamError::new(
                "",
                "they set no bar; set at least one of `p50_ms`, `p95_ms`, `p99_ms` (SLOs in milliseconds) or `max_regression_pct` (rise over the incumbent)",
            ));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(ParamError::new(
                "confidence",
                format!(
                    "{} is not above 0 and below 1; set the confidence of the percentiles' intervals, e.g. 0.95",
                    self.confidence
                ),
            ));
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(ParamError::new(
                "alpha",
                format!(
                    "{} is not above 0 and below 0.5; set the significance level of the regression test, e.g. 0.01",
                    self.alpha
                ),
            ));
        }
        for (param, source) in [
            ("samples", self.samples.as_deref()),
            ("incumbent_samples", Some(self.incumbent_samples.as_str())),
        ] {
            if source.is_some_and(|s| s.trim().is_empty()) {
                return Err(ParamError::new(
                    param,
                    "it is empty; name a data source, e.g. \"attachment:latency.jsonl\"",
                ));
            }
        }
        if let Some(live) = &self.live {
            if self.samples.is_some() {
                return Err(ParamError::new(
                    "live",
                    "both `samples` and `live` are set; keep `samples` to judge attached samples, or `live` to measure the endpoint",
                ));
            }
            live.check().map_err(|e| e.under("live"))?;
            if !cfg!(feature = "live") {
                return Err(ParamError::new("live", crate::live::NOT_IN_THIS_BUILD));
            }
        }
        for (param, source) in [
            ("samples", self.samples_source()),
            ("incumbent_samples", Some(self.incumbent_samples.as_str())),
        ] {
            if let Some(source) = source {
                data::check_source(source, cfg!(feature = "files"), "latency")
                    .map_err(|m| ParamError::new(param, m))?;
            }
        }
        Ok(())
    }
}

impl LiveParams {
    fn check(&self) -> Result<(), ParamError> {
        let url = self.base_url.as_str();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if rest.is_none_or(|host| host.is_empty() || host.starts_with('/')) {
            return Err(ParamError::new(
                "base_url",
                format!(
                    "{url:?} is not an http:// or https:// URL; write the URL to time, e.g. \"http://127.0.0.1:8089/v1/health\""
                ),
            ));
        }
        if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&self.method.as_str()) {
            return Err(ParamError::new(
                "method",
                format!(
                    "{:?} is not one of GET, POST, PUT, PATCH, DELETE, HEAD; write it in capitals",
                    self.method
                ),
            ));
        }
        if !(1..=MAX_REQUESTS).contains(&self.requests) {
            return Err(ParamError::new(
                "requests",
                format!(
                    "{} is not between 1 and {MAX_REQUESTS}; set how many requests to time, e.g. 400 for a p99",
                    self.requests
                ),
            ));
        }
        if !(1..=MAX_IN_FLIGHT_LIMIT).contains(&self.max_in_flight) {
            return Err(ParamError::new(
                "max_in_flight",
                format!(
                    "{} is not between 1 and {MAX_IN_FLIGHT_LIMIT}; set how many requests may run at once, e.g. 1",
                    self.max_in_flight
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.max_http_errors) {
            return Err(ParamError::new(
                "max_http_errors",
                format!(
                    "{} is not between 0 and 1; set the share of requests that may fail, e.g. 0.05",
                    self.max_http_errors
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slo_is_enough_and_defaults_fill_the_rest() {
        let params =
            gatehouse_plugin_sdk::params::parse::<Params>(r#"{"p99_ms": 1000}"#).expect("valid");
        assert_eq!(params.samples_source(), Some(DEFAULT_SAMPLES));
        assert_eq!(params.incumbent_samples, DEFAULT_INCUMBENT_SAMPLES);
        assert_eq!(params.confidence, DEFAULT_CONFIDENCE);
        assert_eq!(params.alpha, DEFAULT_ALPHA);
        assert_eq!(params.when_uncertain, WhenUncertain::Inconclusive);
        assert_eq!(params.slo(Percentile::P99), Some(1000.0));
        assert_eq!(params.slo(Percentile::P50), None);
        assert_eq!(params.max_regression(Percentile::P99), None);
    }

    #[test]
    fn no_bar_at_all_is_refused() {
        let err = String::from(gatehouse_plugin_sdk::params::parse::<Params>("{}").unwrap_err());
        assert!(
            err.contains("set no bar") && err.contains("`p99_ms`"),
            "{err}"
        );
    }

    #[test]
    fn max_regression_is_one_number_or_one_per_percentile() {
        let params = gatehouse_plugin_sdk::params::parse::<Params>(r#"{"max_regression_pct": 20}"#)
            .expect("valid");
        assert_eq!(
            params.max_regression_pct,
            Some(MaxRegression([Some(20.0); 3]))
        );
        let params = gatehouse_plugin_sdk::params::parse::<Params>(
            r#"{"max_regression_pct": {"p99": 25.5}}"#,
        )
        .expect("valid");
        assert_eq!(params.max_regression(Percentile::P99), Some(25.5));
        assert_eq!(params.max_regression(Percentile::P50), None);
        let err = String::from(
            gatehouse_plugin_sdk::params::parse::<Params>(r#"{"max_regression_pct": {"p90": 10}}"#)
                .unwrap_err(),
        );
        assert!(err.contains("`max_regression_pct.p90`"), "{err}");
        let err = String::from(
            gatehouse_plugin_sdk::params::parse::<Params>(r#"{"max_regression_pct": "10%"}"#)
                .unwrap_err(),
        );
        assert!(
            err.contains("`max_regression_pct`") && err.contains("a table such as"),
            "{err}"
        );
        let err = String::from(
            gatehouse_plugin_sdk::params::parse::<Params>(r#"{"max_regression_pct": -5}"#)
                .unwrap_err(),
        );
        assert!(err.contains("`max_regression_pct`"), "{err}");
    }

    #[test]
    fn misspelt_mistyped_and_out_of_range_params_are_named() {
        for (params, named) in [
            (r#"{"p99": 1000}"#, "p99"),
            (r#"{"p95_ms": "fast"}"#, "`p95_ms`"),
            (r#"{"p50_ms": 0}"#, "`p50_ms`"),
            (r#"{"p99_ms": 1000, "confidence": 95}"#, "`confidence`"),
            (r#"{"p99_ms": 1000, "alpha": 0.5}"#, "`alpha`"),
            (
                r#"{"p99_ms": 1000, "when_uncertain": "pass"}"#,
                "`when_uncertain`",
            ),
            (r#"{"p99_ms": 1000, "samples": ""}"#, "`samples`"),
            (
                r#"{"p99_ms": 1000, "live": {"base_url": "localhost:80"}}"#,
                "`live.base_url`",
            ),
            (
                r#"{"p99_ms": 1000, "live": {"base_url": "http://x", "requests": 0}}"#,
                "`live.requests`",
            ),
            (
                r#"{"p99_ms": 1000, "live": {"base_url": "http://x", "max_in_flight": 99}}"#,
                "`live.max_in_flight`",
            ),
            (
                r#"{"p99_ms": 1000, "live": {"base_url": "http://x", "method": "get"}}"#,
                "`live.method`",
            ),
            (
                r#"{"p99_ms": 1000, "live": {"base_url": "http://x", "max_http_errors": 2}}"#,
                "`live.max_http_errors`",
            ),
            (
                r#"{"p99_ms": 1000, "live": {"base_url": "http://x", "request": 5}}"#,
                "request",
            ),
        ] {
            let err =
                String::from(gatehouse_plugin_sdk::params::parse::<Params>(params).unwrap_err());
            assert!(err.contains(named), "{params}: {err}");
        }
    }

    #[test]
    fn live_excludes_samples() {
        let live = r#"{"p99_ms": 1000, "live": {"base_url": "http://127.0.0.1:8089"}}"#;
        let checked = gatehouse_plugin_sdk::params::parse::<Params>(live);
        assert_eq!(checked.is_ok(), cfg!(feature = "live"), "{checked:?}");
        // Parsed but not checked: a build without live mode refuses `live`.
        let params = gatehouse_plugin_sdk::parse_params::<Params>(live).expect("valid");
        assert_eq!(params.samples_source(), None);
        let live = params.live.expect("live");
        assert_eq!(
            (live.requests, live.max_in_flight),
            (DEFAULT_REQUESTS, DEFAULT_MAX_IN_FLIGHT)
        );
        let err = String::from(gatehouse_plugin_sdk::params::parse::<Params>(
            r#"{"p99_ms": 1000, "samples": "attachment:l.jsonl", "live": {"base_url": "http://x"}}"#,
        ).unwrap_err());
        assert!(err.contains("both `samples` and `live`"), "{err}");
    }
}
