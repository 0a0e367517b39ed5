//! The gate's params: where the dataset and the answers come from, how answers
//! are scored, and the bars they must clear. Checked before anything is read,
//! so a wrong param is an error naming it rather than a surprising verdict.

mod schema;

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::{ParamError, data};
use serde::Deserialize;
use serde_json::Value;

pub use schema::schema;

/// Where the candidate's outputs are read from unless `live` is set.
pub const DEFAULT_OUTPUTS: &str = "attachment:outputs.jsonl";
/// What CI attached when the incumbent was released.
pub const DEFAULT_INCUMBENT_OUTPUTS: &str = "incumbent-attachment:outputs.jsonl";
/// Significance level of the regression tests.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Paired bootstrap resamples.
pub const DEFAULT_RESAMPLES: u32 = 2000;
/// Bootstrap seed: fixed, so the same outputs always get the same verdict.
pub const DEFAULT_SEED: u64 = 1;
/// Share of cases that may lack an output before the verdict is inconclusive.
pub const DEFAULT_MAX_MISSING: f64 = 0.05;
/// Share of live requests that may fail before the verdict is inconclusive.
pub const DEFAULT_MAX_HTTP_ERRORS: f64 = 0.05;
/// Relative tolerance of the `numeric` scorer, as Python's `math.isclose`.
pub const DEFAULT_REL_TOL: f64 = 1e-9;
/// Requests in flight at once in live mode.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 8;
/// Most requests in flight the gate asks for; the host may lower it further.
pub const MAX_IN_FLIGHT_LIMIT: u32 = 256;

/// Params from the pipeline, e.g.
/// `{"dataset": "/golden/triage.jsonl", "threshold": 0.9, "scorer": "normalized"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Data source of the golden cases.
    pub dataset: String,
    /// Least pass rate (or mean score, see `metric`) that passes.
    pub threshold: f64,
    /// Data source of the candidate's outputs; `DEFAULT_OUTPUTS` when unset
    /// and `live` is not set either.
    #[serde(default)]
    pub outputs: Option<String>,
    /// Call the candidate's model for every case instead of reading outputs.
    #[serde(default)]
    pub live: Option<LiveParams>,
    /// Scorer of cases that name none.
    #[serde(default)]
    pub scorer: ScorerKind,
    /// What `threshold` is compared with and the verdict's score.
    #[serde(default)]
    pub metric: Metric,
    /// Score a case needs to pass; unset means 1.0, or 0.5 for `token_f1`.
    #[serde(default)]
    pub case_pass: Option<f64>,
    /// JSON Schema for `json_schema` cases whose `expected` is not a schema.
    #[serde(default)]
    pub schema: Option<Value>,
    /// Absolute tolerance of the `numeric` scorer.
    #[serde(default)]
    pub abs_tol: f64,
    /// Relative tolerance of the `numeric` scorer.
    #[serde(default = "default_rel_tol")]
    pub rel_tol: f64,
    /// Data source of the incumbent's outputs, for the regression tests.
    #[serde(default = "default_incumbent_outputs")]
    pub incumbent_outputs: String,
    /// Significance level of the one-sided regression tests.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Paired bootstrap resamples.
    #[serde(default = "default_resamples")]
    pub bootstrap_resamples: u32,
    /// Paired bootstrap seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Share of cases without an output above which the verdict is inconclusive.
    #[serde(default = "default_max_missing")]
    pub max_missing: f64,
    /// Share of failed live requests above which the verdict is inconclusive.
    #[serde(default = "default_max_http_errors")]
    pub max_http_errors: f64,
}

/// The candidate's model endpoint, for live mode.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveParams {
    /// `http://` or `https://` root of an OpenAI-compatible API; the gate
    /// posts to `{base_url}/v1/chat/completions`.
    pub base_url: String,
    /// Requests in flight at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    /// Extra request headers, e.g. `{"authorization": "Bearer ..."}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// How a case's output is scored; see the crate docs for each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScorerKind {
    #[default]
    Exact,
    Normalized,
    TokenF1,
    Regex,
    JsonSchema,
    Numeric,
}

/// The aggregate held to `threshold`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    #[default]
    PassRate,
    MeanScore,
}

impl ScorerKind {
    /// Every scorer's name, as params and cases spell it.
    pub const NAMES: &'static str = "exact, normalized, token_f1, regex, json_schema, numeric";

    /// Parses a case's `scorer` field.
    pub fn parse(name: &str) -> Option<ScorerKind> {
        Some(match name {
            "exact" => ScorerKind::Exact,
            "normalized" => ScorerKind::Normalized,
            "token_f1" => ScorerKind::TokenF1,
            "regex" => ScorerKind::Regex,
            "json_schema" => ScorerKind::JsonSchema,
            "numeric" => ScorerKind::Numeric,
            _ => return None,
        })
    }

    /// The score a case needs to pass when `case_pass` is not set: all of
    /// it for scorers that give 0 or 1, half for token F1, where a right
    /// answer in other words rarely reaches 1.
    pub fn default_case_pass(self) -> f64 {
        match self {
            ScorerKind::TokenF1 => 0.5,
            _ => 1.0,
        }
    }
}

impl Metric {
    /// The measurement's name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::PassRate => "pass_rate",
            Metric::MeanScore => "mean_score",
        }
    }
}

fn default_incumbent_outputs() -> String {
    DEFAULT_INCUMBENT_OUTPUTS.to_string()
}
fn default_alpha() -> f64 {
    DEFAULT_ALPHA
}
fn default_resamples() -> u32 {
    DEFAULT_RESAMPLES
}
fn default_seed() -> u64 {
    DEFAULT_SEED
}
fn default_max_missing() -> f64 {
    DEFAULT_MAX_MISSING
}
fn default_max_http_errors() -> f64 {
    DEFAULT_MAX_HTTP_ERRORS
}
fn default_rel_tol() -> f64 {
    DEFAULT_REL_TOL
}
fn default_max_in_flight() -> u32 {
    DEFAULT_MAX_IN_FLIGHT
}

impl Params {
    /// The data source of the candidate's outputs, when they are read.
    pub fn outputs_source(&self) -> Option<&str> {
        match (&self.outputs, &self.live) {
            (Some(source), _) => Some(source),
            (None, None) => Some(DEFAULT_OUTPUTS),
            (None, Some(_)) => None,
        }
    }

    /// The score a case scored by `kind` needs to pass.
    pub fn case_pass_for(&self, kind: ScorerKind) -> f64 {
        self.case_pass.unwrap_or(kind.default_case_pass())
    }
}

impl gatehouse_plugin_sdk::Params for Params {
    fn check(&self) -> Result<(), ParamError> {
        let share = |name: &str, value: f64, meaning: &str| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(ParamError::new(
                    name,
                    format!("{value} is not between 0 and 1; set {meaning}"),
                ))
            }
        };
        if self.dataset.trim().is_empty() {
            return Err(ParamError::new(
                "dataset",
                "it is empty; name the golden cases, e.g. \"attachment:golden.jsonl\" or \"/golden/triage.jsonl\"",
            ));
        }
        share(
            "threshold",
            self.threshold,
            "the least pass rate that passes, e.g. 0.9",
        )?;
        if let Some(case_pass) = self.case_pass {
            share(
                "case_pass",
                case_pass,
                "the score a case needs to pass, e.g. 1.0",
            )?;
        }
        share(
            "max_missing",
            self.max_missing,
            "the share of cases that may lack an output, e.g. 0.05",
        )?;
        share(
            "max_http_errors",
            self.max_http_errors,
            "the share of live requests that may fail, e.g. 0.05",
        )?;
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(ParamError::new(
                "alpha",
                format!(
                    "{} is not above 0 and below 0.5; set the significance level of the regression tests, e.g. 0.05",
                    self.alpha
                ),
            ));
        }
        for (name, tolerance) in [("abs_tol", self.abs_tol), ("rel_tol", self.rel_tol)] {
            if !(tolerance.is_finite() && tolerance >= 0.0) {
                return Err(ParamError::new(
                    name,
                    format!(
                        "{tolerance} is not a number of 0 or more; set how far a numeric answer may be off, e.g. 0.01"
                    ),
                ));
            }
        }
        if self.bootstrap_resamples < 100 {
            return Err(ParamError::new(
                "bootstrap_resamples",
                format!(
                    "{} is too few for an interval; use at least 100, e.g. 2000",
                    self.bootstrap_resamples
                ),
            ));
        }
        if let Some(schema) = &self.schema {
            crate::json_schema::Schema::compile(schema)
                .map_err(|e| ParamError::new("schema", e.to_string()))?;
        }
        if let Some(live) = &self.live {
            if self.outputs.is_some() {
                return Err(ParamError::new(
                    "live",
                    "both `outputs` and `live` are set; keep `outputs` to score attached answers, or `live` to ask the model",
                ));
            }
            live.check().map_err(|e| e.under("live"))?;
            if !cfg!(feature = "live") {
                return Err(ParamError::new("live", crate::live::NOT_IN_THIS_BUILD));
            }
        }
        let sources = [
            ("dataset", Some(self.dataset.as_str())),
            ("outputs", self.outputs_source()),
            ("incumbent_outputs", Some(self.incumbent_outputs.as_str())),
        ];
        for (name, source) in sources {
            if let Some(source) = source {
                data::check_source(source, cfg!(feature = "files"), "golden-eval")
                    .map_err(|m| ParamError::new(name, m))?;
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
                    "{url:?} is not an http:// or https:// URL; write the API root, e.g. \"http://127.0.0.1:8089\""
                ),
            ));
        }
        if !(1..=MAX_IN_FLIGHT_LIMIT).contains(&self.max_in_flight) {
            return Err(ParamError::new(
                "max_in_flight",
                format!(
                    "{} is not between 1 and {MAX_IN_FLIGHT_LIMIT}; set how many requests may run at once, e.g. 8",
                    self.max_in_flight
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
    fn only_dataset_and_threshold_are_required() {
        let params = gatehouse_plugin_sdk::params::parse::<Params>(
            r#"{"dataset": "attachment:golden.jsonl", "threshold": 0.9}"#,
        )
        .expect("valid params");
        assert_eq!(params.scorer, ScorerKind::Exact);
        assert_eq!(params.metric, Metric::PassRate);
        assert_eq!(params.outputs_source(), Some(DEFAULT_OUTPUTS));
        assert_eq!(params.incumbent_outputs, DEFAULT_INCUMBENT_OUTPUTS);
        assert_eq!(params.alpha, DEFAULT_ALPHA);
        assert_eq!(params.case_pass_for(ScorerKind::Exact), 1.0);
        assert_eq!(params.case_pass_for(ScorerKind::TokenF1), 0.5);
    }

    #[test]
    fn missing_threshold_is_named() {
        let err = String::from(
            gatehouse_plugin_sdk::params::parse::<Params>(
                r#"{"dataset": "attachment:golden.jsonl"}"#,
            )
            .unwrap_err(),
        );
        assert!(err.contains("missing field `threshold`"), "{err}");
    }

    #[test]
    fn misspelt_and_mistyped_params_are_named() {
        let err = String::from(
            gatehouse_plugin_sdk::params::parse::<Params>(
                r#"{"dataset": "a", "threshold": 0.9, "treshold": 1}"#,
            )
            .unwrap_err(),
        );
        assert!(err.contains("treshold"), "{err}");
        let err = String::from(
            gatehouse_plugin_sdk::params::parse::<Params>(
                r#"{"dataset": "a", "threshold": "high"}"#,
            )
            .unwrap_err(),
        );
        assert!(err.contains("`threshold`"), "{err}");
        let err = String::from(
            gatehouse_plugin_sdk::params::parse::<Params>(
                r#"{"dataset": "a", "threshold": 0.9, "scorer": "fuzzy"}"#,
            )
            .unwrap_err(),
        );
        assert!(
            err.contains("`scorer`") && err.contains("token_f1"),
            "{err}"
        );
        let err = String::from(gatehouse_plugin_sdk::params::parse::<Params>(r#"{"dataset": "a", "threshold": 0.9, "live": {"base_url": "http://x", "max_inflight": 2}}"#).unwrap_err());
        assert!(err.contains("max_inflight"), "{err}");
    }

    #[test]
    fn out_of_range_values_say_what_to_set() {
        let base = r#""dataset": "attachment:g.jsonl""#;
        for (extra, named) in [
            (r#""threshold": 90"#, "`threshold`"),
            (r#""threshold": 0.9, "alpha": 0.5"#, "`alpha`"),
            (r#""threshold": 0.9, "case_pass": -1"#, "`case_pass`"),
            (r#""threshold": 0.9, "rel_tol": -0.1"#, "`rel_tol`"),
            (r#""threshold": 0.9, "max_missing": 2"#, "`max_missing`"),
            (
                r#""threshold": 0.9, "bootstrap_resamples": 10"#,
                "`bootstrap_resamples`",
            ),
            (r#""threshold": 0.9, "schema": {"anyOf": []}"#, "`schema`"),
        ] {
            let err = String::from(
                gatehouse_plugin_sdk::params::parse::<Params>(&format!("{{{base}, {extra}}}"))
                    .unwrap_err(),
            );
            assert!(err.contains(named), "{extra}: {err}");
        }
        let err = String::from(
            gatehouse_plugin_sdk::params::parse::<Params>(r#"{"dataset": " ", "threshold": 0.9}"#)
                .unwrap_err(),
        );
        assert!(err.contains("`dataset`"), "{err}");
    }

    #[test]
    fn live_mode_checks_its_endpoint_and_excludes_outputs() {
        let live = |inner: &str| {
            gatehouse_plugin_sdk::params::parse::<Params>(&format!(
                r#"{{"dataset": "attachment:g.jsonl", "threshold": 0.9, "live": {inner}}}"#
            ))
        };
        let accepted = live(r#"{"base_url": "http://127.0.0.1:8089"}"#);
        assert_eq!(accepted.is_ok(), cfg!(feature = "live"), "{accepted:?}");
        match accepted {
            Ok(params) => {
                assert_eq!(params.outputs_source(), None);
                assert_eq!(
                    params.live.map(|l| l.max_in_flight),
                    Some(DEFAULT_MAX_IN_FLIGHT)
                );
            }
            Err(e) => {
                assert_eq!(e.path, "live");
                assert!(e.message.contains("--features live"), "{e:?}");
            }
        }
        let err = live(r#"{"base_url": "127.0.0.1:8089"}"#).unwrap_err();
        assert_eq!(err.path, "live.base_url", "{err:?}");
        let err = live(r#"{"base_url": "https://x", "max_in_flight": 0}"#).unwrap_err();
        assert_eq!(err.path, "live.max_in_flight", "{err:?}");
        let err = String::from(gatehouse_plugin_sdk::params::parse::<Params>(
            r#"{"dataset": "a", "threshold": 0.9, "outputs": "attachment:o.jsonl", "live": {"base_url": "http://x"}}"#,
        ).unwrap_err());
        assert!(err.contains("both `outputs` and `live`"), "{err}");
    }
}
