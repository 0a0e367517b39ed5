//! The gate's params: where both samples come from, which features to
//! compare, and the bar each feature must clear. Checked before anything is
//! read, so a wrong param is an error naming it rather than a surprising
//! verdict.
//!
//! Rules: `features` is required and not empty (a drift gate comparing
//! nothing would pass everything). A threshold that belongs to the other
//! kind of feature (`js_max` on a numeric one, say) is refused, since it
//! would silently do nothing.

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::stats::PSI_MAX_BINS;
use gatehouse_plugin_sdk::{ParamError, data};
use serde::Deserialize;
use serde_json::{Value, json};

/// Where the candidate's samples are read from.
pub const DEFAULT_CANDIDATE: &str = "attachment:features.jsonl";
/// What CI attached when the incumbent was released.
pub const DEFAULT_REFERENCE: &str = "incumbent-attachment:features.jsonl";
/// PSI bins, cut at the reference's deciles.
pub const DEFAULT_BINS: usize = 10;
/// Values a feature needs on each side before the gate judges it.
pub const DEFAULT_MIN_SAMPLES: usize = 30;
/// Largest population stability index that passes ("drifting" starts
/// around 0.1 to 0.25 in common practice).
pub const DEFAULT_PSI_MAX: f64 = 0.2;
/// Kolmogorov-Smirnov p-value below which a numeric feature drifted.
pub const DEFAULT_KS_ALPHA: f64 = 0.01;
/// Largest Jensen-Shannon distance (base 2, 0 to 1) that passes.
pub const DEFAULT_JS_MAX: f64 = 0.1;
/// Chi-squared homogeneity p-value below which a categorical feature drifted.
pub const DEFAULT_CHI2_ALPHA: f64 = 0.01;

/// Params from the pipeline, e.g.
/// `{"features": {"output_label": {"kind": "categorical"}, "confidence": {"kind": "numeric"}}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Data source of the candidate's samples.
    #[serde(default = "default_candidate")]
    pub candidate: String,
    /// Data source of the reference samples.
    #[serde(default = "default_reference")]
    pub reference: String,
    /// The features to compare, by name; others in the records are ignored.
    pub features: BTreeMap<String, FeatureParams>,
    /// PSI bins.
    #[serde(default = "default_bins")]
    pub bins: usize,
    /// Values a feature needs on each side before it is judged.
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
    /// Pass, rather than stay inconclusive, when there is no reference.
    #[serde(default)]
    pub allow_missing_reference: bool,
}

/// One feature's kind and bars, as written in the pipeline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureParams {
    pub kind: Kind,
    #[serde(default)]
    pub psi_max: Option<f64>,
    #[serde(default)]
    pub ks_alpha: Option<f64>,
    #[serde(default)]
    pub js_max: Option<f64>,
    #[serde(default)]
    pub chi2_alpha: Option<f64>,
    /// A drifted non-blocking feature warns instead of failing.
    #[serde(default = "default_blocking")]
    pub blocking: bool,
}

/// How a feature's values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Numbers: PSI and the two-sample Kolmogorov-Smirnov test.
    Numeric,
    /// Labels: Jensen-Shannon distance and the chi-squared test.
    Categorical,
}

/// A feature to compare, with its bars resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub name: String,
    pub blocking: bool,
    pub bars: Bars,
}

/// The thresholds a feature is held to; crossing any one is drift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bars {
    Numeric { psi_max: f64, ks_alpha: f64 },
    Categorical { js_max: f64, chi2_alpha: f64 },
}

impl Feature {
    pub fn kind(&self) -> Kind {
        match self.bars {
            Bars::Numeric { .. } => Kind::Numeric,
            Bars::Categorical { .. } => Kind::Categorical,
        }
    }
}

fn default_candidate() -> String {
    DEFAULT_CANDIDATE.to_string()
}
fn default_reference() -> String {
    DEFAULT_REFERENCE.to_string()
}
fn default_bins() -> usize {
    DEFAULT_BINS
}
fn default_min_samples() -> usize {
    DEFAULT_MIN_SAMPLES
}
fn default_blocking() -> bool {
    true
}

impl Params {
    /// The features to compare, in name order, with defaults filled in.
    pub fn features(&self) -> Vec<Feature> {
        self.features
            .iter()
            .map(|(name, f)| Feature {
                name: name.clone(),
                blocking: f.blocking,
                bars: match f.kind {
                    Kind::Numeric => Bars::Numeric {
                        psi_max: f.psi_max.unwrap_or(DEFAULT_PSI_MAX),
                        ks_alpha: f.ks_alpha.unwrap_or(DEFAULT_KS_ALPHA),
                    },
                    Kind::Categorical => Bars::Categorical {
                        js_max: f.js_max.unwrap_or(DEFAULT_JS_MAX),
                        chi2_alpha: f.chi2_alpha.unwrap_or(DEFAULT_CHI2_ALPHA),
                    },
                },
            })
            .collect()
    }
}

impl gatehouse_plugin_sdk::Params for Params {
    fn check(&self) -> Result<(), ParamError> {
        for (param, source) in [
            ("candidate", &self.candidate),
            ("reference", &self.reference),
        ] {
            if source.trim().is_empty() {
                return Err(ParamError::new(
                    param,
                    "it is empty; name a data source, e.g. \"attachment:features.jsonl\"",
                ));
            }
            data::check_source(source, cfg!(feature = "files"), "drift")
                .map_err(|m| ParamError::new(param, m))?;
        }
        if self.features.is_empty() {
            return Err(ParamError::new(
                "features",
                "it is empty; name at least one feature, e.g. features = { output_label = { kind = \"categorical\" } }",
            ));
        }
        if !(2..=PSI_MAX_BINS).contains(&self.bins) {
            return Err(ParamError::new(
                "bins",
                format!(
                    "{} is not between 2 and {PSI_MAX_BINS}; set how many PSI bins to cut, e.g. 10",
                    self.bins
                ),
            ));
        }
        if self.min_samples == 0 {
            return Err(ParamError::new(
                "min_samples",
                "it is 0; set how many values a feature needs on each side, e.g. 30",
            ));
        }
        for (name, feature) in &self.features {
            feature.check(name)?;
        }
        Ok(())
    }
}

impl FeatureParams {
    fn check(&self, name: &str) -> Result<(), ParamError> {
        if name.trim().is_empty() {
            return Err(ParamError::new(
                "features",
                "a feature has an empty name; name it as the records' key",
            ));
        }
        let (wrong, kind) = match self.kind {
            Kind::Numeric => (
                [("js_max", self.js_max), ("chi2_alpha", self.chi2_alpha)],
                "numeric",
            ),
            Kind::Categorical => (
                [("psi_max", self.psi_max), ("ks_alpha", self.ks_alpha)],
                "categorical",
            ),
        };
        for (param, value) in wrong {
            if value.is_some() {
                let belongs = if kind == "numeric" {
                    "categorical"
                } else {
                    "numeric"
                };
                return Err(ParamError::new(
                    format!("features.{name}.{param}"),
                    format!(
                        "it applies to {belongs} features, and `{name}` is {kind}; remove it or change `kind`"
                    ),
                ));
            }
        }
        let at_most = |param: &str, value: Option<f64>, max: f64, example: &str| match value {
            Some(v) if !(v.is_finite() && (0.0..=max).contains(&v)) => Err(ParamError::new(
                format!("features.{name}.{param}"),
                format!("{v} is not between 0 and {max}; set {example}"),
            )),
            _ => Ok(()),
        };
        at_most(
            "psi_max",
            self.psi_max,
            f64::MAX,
            "the largest PSI that passes, e.g. 0.2",
        )?;
        at_most(
            "js_max",
            self.js_max,
            1.0,
            "the largest Jensen-Shannon distance that passes, e.g. 0.1",
        )?;
        at_most(
            "ks_alpha",
            self.ks_alpha,
            0.5,
            "the significance level of the KS test, e.g. 0.01 (0 turns it off)",
        )?;
        at_most(
            "chi2_alpha",
            self.chi2_alpha,
            0.5,
            "the significance level of the chi-squared test, e.g. 0.01 (0 turns it off)",
        )?;
        Ok(())
    }
}

/// JSON Schema of [`Params`], reported by `describe`.
pub fn schema() -> Value {
    let source = |what: &str, default: &str| {
        json!({
            "description": format!("{what}: `attachment:NAME`, `incumbent-attachment:NAME` or an absolute path in a granted data directory. JSON lines of objects (one per request), or for a single numeric feature one JSON array of numbers."),
            "type": "string",
            "minLength": 1,
            "default": default
        })
    };
    let bar = |what: &str, max: f64, default: f64| json!({ "description": what, "type": "number", "minimum": 0, "maximum": max, "default": default });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "drift params",
        "type": "object",
        "additionalProperties": false,
        "required": ["features"],
        "properties": {
            "candidate": source("The candidate's samples", DEFAULT_CANDIDATE),
            "reference": source("The reference samples, e.g. what the incumbent was released with", DEFAULT_REFERENCE),
            "features": {
                "description": "Features to compare, by the records' key; features not listed are ignored.",
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["kind"],
                    "properties": {
                        "kind": { "enum": ["numeric", "categorical"], "description": "numeric: PSI and two-sample KS; categorical: Jensen-Shannon distance and chi-squared homogeneity." },
                        "psi_max": { "description": "Numeric: largest PSI that passes.", "type": "number", "minimum": 0, "default": DEFAULT_PSI_MAX },
                        "ks_alpha": bar("Numeric: KS p-value below this is drift; 0 turns the test off.", 0.5, DEFAULT_KS_ALPHA),
                        "js_max": bar("Categorical: largest Jensen-Shannon distance (base 2) that passes.", 1.0, DEFAULT_JS_MAX),
                        "chi2_alpha": bar("Categorical: chi-squared p-value below this is drift; 0 turns the test off.", 0.5, DEFAULT_CHI2_ALPHA),
                        "blocking": { "description": "When false, drift in this feature warns instead of failing.", "type": "boolean", "default": true }
                    }
                }
            },
            "bins": { "description": "PSI bins, cut at the reference's quantiles.", "type": "integer", "minimum": 2, "maximum": PSI_MAX_BINS, "default": DEFAULT_BINS },
            "min_samples": { "description": "Values a feature needs on each side; fewer make it inconclusive.", "type": "integer", "minimum": 1, "default": DEFAULT_MIN_SAMPLES },
            "allow_missing_reference": { "description": "Pass (with a reason) instead of staying inconclusive when there is no reference, e.g. on a first release.", "type": "boolean", "default": false }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_plugin_sdk::params::parse;

    #[test]
    fn only_features_are_required_and_defaults_fill_the_bars() {
        let params = parse::<Params>(
            r#"{"features": {"label": {"kind": "categorical"}, "length": {"kind": "numeric", "psi_max": 0.3}}}"#,
        )
        .expect("valid params");
        assert_eq!(params.candidate, DEFAULT_CANDIDATE);
        assert_eq!(params.reference, DEFAULT_REFERENCE);
        assert_eq!(params.bins, DEFAULT_BINS);
        assert!(!params.allow_missing_reference);
        let features = params.features();
        assert_eq!(features[0].name, "label");
        assert_eq!(
            features[0].bars,
            Bars::Categorical {
                js_max: DEFAULT_JS_MAX,
                chi2_alpha: DEFAULT_CHI2_ALPHA
            }
        );
        assert_eq!(
            features[1].bars,
            Bars::Numeric {
                psi_max: 0.3,
                ks_alpha: DEFAULT_KS_ALPHA
            }
        );
        assert!(features[1].blocking);
    }

    #[test]
    fn missing_or_empty_features_are_refused() {
        let err = String::from(parse::<Params>("{}").unwrap_err());
        assert!(err.contains("missing field `features`"), "{err}");
        let err = String::from(parse::<Params>(r#"{"features": {}}"#).unwrap_err());
        assert!(
            err.contains("`features`") && err.contains("at least one"),
            "{err}"
        );
    }

    #[test]
    fn misspelt_and_mistyped_params_are_named() {
        let err = String::from(
            parse::<Params>(r#"{"features": {"x": {"kind": "numeric", "psi_mx": 1}}}"#)
                .unwrap_err(),
        );
        assert!(err.contains("`features.x.psi_mx`"), "{err}");
        let err = String::from(
            parse::<Params>(r#"{"features": {"x": {"kind": "ordinal"}}}"#).unwrap_err(),
        );
        assert!(
            err.contains("`features.x.kind`") && err.contains("categorical"),
            "{err}"
        );
        let err = String::from(
            parse::<Params>(r#"{"features": {"x": {"kind": "numeric"}}, "bins": "ten"}"#)
                .unwrap_err(),
        );
        assert!(err.contains("`bins`"), "{err}");
        let err = String::from(
            parse::<Params>(r#"{"features": {"x": {"kind": "numeric"}}, "refrence": "a"}"#)
                .unwrap_err(),
        );
        assert!(err.contains("refrence"), "{err}");
    }

    #[test]
    fn out_of_range_values_name_the_param() {
        for (params, named) in [
            (
                r#""x": {"kind": "numeric", "psi_max": -1}"#,
                "`features.x.psi_max`",
            ),
            (
                r#""x": {"kind": "numeric", "ks_alpha": 0.7}"#,
                "`features.x.ks_alpha`",
            ),
            (
                r#""x": {"kind": "categorical", "js_max": 2}"#,
                "`features.x.js_max`",
            ),
            (
                r#""x": {"kind": "categorical", "chi2_alpha": -0.1}"#,
                "`features.x.chi2_alpha`",
            ),
        ] {
            let err = String::from(
                parse::<Params>(&format!(r#"{{"features": {{{params}}}}}"#)).unwrap_err(),
            );
            assert!(err.contains(named), "{params}: {err}");
        }
        let err = String::from(
            parse::<Params>(r#"{"features": {"x": {"kind": "numeric"}}, "bins": 1}"#).unwrap_err(),
        );
        assert!(err.contains("`bins`"), "{err}");
        let err = String::from(
            parse::<Params>(r#"{"features": {"x": {"kind": "numeric"}}, "min_samples": 0}"#)
                .unwrap_err(),
        );
        assert!(err.contains("`min_samples`"), "{err}");
        let err = String::from(
            parse::<Params>(r#"{"features": {"x": {"kind": "numeric"}}, "reference": " "}"#)
                .unwrap_err(),
        );
        assert!(err.contains("`reference`"), "{err}");
    }

    #[test]
    fn a_bar_of_the_other_kind_is_refused() {
        let err = String::from(
            parse::<Params>(r#"{"features": {"label": {"kind": "categorical", "psi_max": 0.2}}}"#)
                .unwrap_err(),
        );
        assert!(
            err.contains("`features.label.psi_max`") && err.contains("numeric features"),
            "{err}"
        );
        let err = String::from(
            parse::<Params>(r#"{"features": {"len": {"kind": "numeric", "js_max": 0.2}}}"#)
                .unwrap_err(),
        );
        assert!(err.contains("`features.len.js_max`"), "{err}");
    }

    #[test]
    fn schema_lists_exactly_the_accepted_params() {
        let schema = schema();
        let properties = schema["properties"].as_object().expect("properties");
        let mut every_param = serde_json::Map::new();
        for name in properties.keys() {
            let value = match name.as_str() {
                "candidate" | "reference" => json!("attachment:x.jsonl"),
                "features" => {
                    json!({"x": {"kind": "numeric", "psi_max": 0.3, "ks_alpha": 0.05, "blocking": false}})
                }
                "bins" => json!(20),
                "min_samples" => json!(5),
                "allow_missing_reference" => json!(true),
                other => panic!("schema has a param {other} this test does not know"),
            };
            every_param.insert(name.clone(), value);
        }
        let parsed = parse::<Params>(&Value::Object(every_param).to_string());
        assert!(parsed.is_ok(), "{parsed:?}");
        let feature = &properties["features"]["additionalProperties"]["properties"];
        assert_eq!(feature.as_object().map(|o| o.len()), Some(6));
        assert_eq!(schema["required"], json!(["features"]));
    }

    #[test]
    fn data_directory_paths_need_the_files_build() {
        let with = |reference: &str| {
            parse::<Params>(&format!(
                r#"{{"features": {{"x": {{"kind": "numeric"}}}}, "reference": "{reference}"}}"#
            ))
        };
        let accepted = with("/reference/features.jsonl");
        assert_eq!(accepted.is_ok(), cfg!(feature = "files"), "{accepted:?}");
        if let Err(e) = accepted {
            assert_eq!(e.path, "reference");
            assert!(e.message.contains("--features files"), "{e:?}");
        }
        assert!(with("attachment:x").is_ok());
        assert_eq!(
            with("features.jsonl").map_err(|e| e.path),
            Err("reference".into())
        );
    }
}
