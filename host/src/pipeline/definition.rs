//! Pipelines as code: a TOML file names the environments a candidate passes
//! through, in order, and for each its gates, adapter, approvals and canary.
//!
//! Parsing happens once, at the edge; every error names the file, the line
//! and what to change. A validated [`Pipeline`] is copied into each release it
//! starts, so editing the file never changes a release already under way.

mod catalog;
mod locate;
mod progressive;

use catalog::Use;
pub use catalog::{Catalog, did_you_mean};
pub use locate::{ParamSite, Source};
pub use progressive::{CanarySpec, InconclusiveAction};

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// The adapter every environment gets unless it names another.
pub const BUILTIN_ADAPTER: &str = "configstore";
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_ADAPTER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_GATE_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub name: String,
    pub environments: Vec<Environment>,
    /// Four eyes: whoever submitted a release may not approve it (a stage,
    /// or a paused canary step).
    #[serde(default)]
    pub four_eyes: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub name: String,
    /// [`BUILTIN_ADAPTER`], or the name of an adapter plugin.
    pub adapter: String,
    /// Handed to an adapter plugin as a JSON object.
    #[serde(default)]
    pub adapter_params: serde_json::Value,
    /// How long one adapter call may take.
    #[serde(default = "default_adapter_timeout")]
    pub adapter_timeout: Duration,
    /// Distinct operators who must approve before the candidate is applied.
    pub approvals: u32,
    pub gates: Vec<GateSpec>,
    pub canary: Option<CanarySpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateSpec {
    /// Unique within its environment; defaults to the plugin's name.
    pub name: String,
    pub plugin: String,
    /// Handed to the plugin as a JSON object.
    pub params: serde_json::Value,
    pub timeout: Duration,
    /// Instructions one evaluation may run (wasmtime fuel).
    #[serde(default = "default_fuel")]
    pub fuel: u64,
    /// A blocking gate that does not pass stops the release; a non-blocking
    /// one is recorded as a warning.
    pub blocking: bool,
}

fn default_adapter_timeout() -> Duration {
    DEFAULT_ADAPTER_TIMEOUT
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: cannot read the pipeline: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl Pipeline {
    pub fn load(path: &Path, catalog: &Catalog) -> Result<Pipeline, Error> {
        let source = Source::read(path)?;
        Pipeline::parse(&source.file, &source.text, catalog)
    }

    /// Every plugin's parameters the pipeline hands over: where they sit,
    /// the plugin, and the parameters.
    pub fn param_sites(&self) -> Vec<(ParamSite, &str, &serde_json::Value)> {
        let mut sites = Vec::new();
        for (env, e) in self.environments.iter().enumerate() {
            for (gate, g) in e.gates.iter().enumerate() {
                sites.push((ParamSite::Gate { env, gate }, g.plugin.as_str(), &g.params));
            }
            if e.adapter != BUILTIN_ADAPTER {
                sites.push((
                    ParamSite::Adapter { env },
                    e.adapter.as_str(),
                    &e.adapter_params,
                ));
            }
        }
        sites
    }

    /// Parses and validates pipeline TOML; `file` only labels errors.
    pub fn parse(file: &str, text: &str, catalog: &Catalog) -> Result<Pipeline, Error> {
        let at = |span: Range<usize>, message: String| {
            let (line, column) = line_column(text, span.start);
            Error::Invalid {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let raw: RawPipeline = toml::from_str(text)
            .map_err(|e| at(e.span().unwrap_or(0..0), e.message().trim_end().to_string()))?;

        check_name(&raw.name, "pipeline").map_err(|m| at(raw.name.span(), m))?;
        if raw.environment.is_empty() {
            return Err(at(
                0..0,
                "the pipeline has no environments; add at least one [[environment]] with a name"
                    .into(),
            ));
        }
        let mut seen_envs = BTreeSet::new();
        let mut environments = Vec::with_capacity(raw.environment.len());
        for env in raw.environment {
            check_name(&env.name, "environment").map_err(|m| at(env.name.span(), m))?;
            if !seen_envs.insert(env.name.get_ref().clone()) {
                return Err(at(
                    env.name.span(),
                    format!(
                        "environment {:?} appears twice; each environment is a stage and comes once",
                        env.name.get_ref()
                    ),
                ));
            }
            let adapter = match env.adapter {
                None => BUILTIN_ADAPTER.to_string(),
                Some(a) => {
                    catalog
                        .check(a.get_ref(), Use::Adapter)
                        .map_err(|m| at(a.span(), m))?;
                    a.into_inner()
                }
            };
            let mut gate_names = BTreeSet::new();
            let mut gates = Vec::with_capacity(env.gate.len());
            for g in env.gate {
                catalog
                    .check(g.plugin.get_ref(), Use::Gate)
                    .map_err(|m| at(g.plugin.span(), m))?;
                let name = match &g.name {
                    Some(n) => {
                        check_name(n, "gate").map_err(|m| at(n.span(), m))?;
                        n.get_ref().clone()
                    }
                    None => g.plugin.get_ref().clone(),
                };
                if !gate_names.insert(name.clone()) {
                    let span = g.name.as_ref().map_or(g.plugin.span(), |n| n.span());
                    return Err(at(
                        span,
                        format!(
                            "gate {name:?} appears twice in environment {:?}; give one of them a distinct `name`",
                            env.name.get_ref()
                        ),
                    ));
                }
                let timeout = match &g.timeout_ms {
                    None => DEFAULT_GATE_TIMEOUT,
                    Some(ms) => {
                        let t = Duration::from_millis(*ms.get_ref());
                        if t.is_zero() || t > MAX_GATE_TIMEOUT {
                            return Err(at(
                                ms.span(),
                                format!(
                                    "timeout_ms must be between 1 and {}",
                                    MAX_GATE_TIMEOUT.as_millis()
                                ),
                            ));
                        }
                        t
                    }
                };
                let fuel = match &g.fuel {
                    None => default_fuel(),
                    Some(f) if (1..=MAX_FUEL).contains(f.get_ref()) => *f.get_ref(),
                    Some(f) => {
                        return Err(at(
                            f.span(),
                            format!("fuel must be between 1 and {MAX_FUEL} instructions"),
                        ));
                    }
                };
                let params = serde_json::to_value(&g.params).map_err(|e| {
                    at(
                        g.plugin.span(),
                        format!("params cannot be handed to the plugin as JSON: {e}"),
                    )
                })?;
                gates.push(GateSpec {
                    name,
                    plugin: g.plugin.into_inner(),
                    params,
                    timeout,
                    fuel,
                    blocking: g.blocking.unwrap_or(true),
                });
            }
            let canary = match env.canary {
                None => None,
                Some(c) => {
                    let span = c.span();
                    let base = Path::new(file).parent().unwrap_or(Path::new("."));
                    Some(progressive::resolve(c.into_inner(), base).map_err(|m| at(span, m))?)
                }
            };
            if adapter == BUILTIN_ADAPTER && !env.adapter_params.is_empty() {
                return Err(at(
                    env.name.span(),
                    format!(
                        "environment {:?} has adapter_params but uses the built-in adapter, which takes none; name an adapter plugin with `adapter`",
                        env.name.get_ref()
                    ),
                ));
            }
            let adapter_timeout = match &env.adapter_timeout_ms {
                None => DEFAULT_ADAPTER_TIMEOUT,
                Some(ms) => {
                    let t = Duration::from_millis(*ms.get_ref());
                    if t.is_zero() || t > MAX_GATE_TIMEOUT {
                        return Err(at(
                            ms.span(),
                            format!(
                                "adapter_timeout_ms must be between 1 and {}",
                                MAX_GATE_TIMEOUT.as_millis()
                            ),
                        ));
                    }
                    t
                }
            };
            let adapter_params = serde_json::to_value(&env.adapter_params).map_err(|e| {
                at(
                    env.name.span(),
                    format!("adapter_params cannot be handed to the plugin as JSON: {e}"),
                )
            })?;
            environments.push(Environment {
                name: env.name.into_inner(),
                adapter,
                adapter_params,
                adapter_timeout,
                approvals: env.approvals.unwrap_or(0),
                gates,
                canary,
            });
        }
        Ok(Pipeline {
            name: raw.name.into_inner(),
            environments,
            four_eyes: raw.four_eyes,
        })
    }

    pub fn environment(&self, name: &str) -> Option<(usize, &Environment)> {
        self.environments
            .iter()
            .enumerate()
            .find(|(_, e)| e.name == name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: Spanned<String>,
    #[serde(default)]
    four_eyes: bool,
    #[serde(default)]
    environment: Vec<RawEnvironment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    name: Spanned<String>,
    adapter: Option<Spanned<String>>,
    #[serde(default)]
    adapter_params: toml::Table,
    adapter_timeout_ms: Option<Spanned<u64>>,
    approvals: Option<u32>,
    #[serde(default)]
    gate: Vec<RawGate>,
    canary: Option<Spanned<progressive::RawCanary>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    name: Option<Spanned<String>>,
    plugin: Spanned<String>,
    #[serde(default)]
    params: toml::Table,
    timeout_ms: Option<Spanned<u64>>,
    fuel: Option<Spanned<u64>>,
    blocking: Option<bool>,
}

fn default_fuel() -> u64 {
    crate::plugins::DEFAULT_FUEL
}

/// The most fuel a pipeline may give one evaluation: minutes of work.
const MAX_FUEL: u64 = 1_000_000_000_000;

fn check_name(name: &Spanned<String>, what: &str) -> Result<(), String> {
    let n = name.get_ref();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name {n:?} must be 1 to 64 characters of a-z, 0-9, '-' or '_'"
        ))
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The names a test pipeline is checked against.
    pub(crate) fn fixed_catalog() -> Catalog {
        Catalog {
            gates: ["cost-estimator", "config-lint", "golden-eval"]
                .map(String::from)
                .into(),
            adapters: ["adapter-file"].map(String::from).into(),
        }
    }

    fn parse(text: &str) -> Result<Pipeline, Error> {
        Pipeline::parse("p.toml", text, &fixed_catalog())
    }

    fn error_at(text: &str) -> (usize, String) {
        match parse(text) {
            Err(Error::Invalid { line, message, .. }) => (line, message),
            other => panic!("expected an invalid pipeline, got {other:?}"),
        }
    }

    #[test]
    fn example_pipeline_parses_with_defaults() {
        let p = parse(include_str!("../../../examples/pipeline.toml")).unwrap();
        assert_eq!(p.environments.len(), 3);
        let names: Vec<_> = p.environments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "staging", "production"]);
        assert!(p.environments.iter().all(|e| e.adapter == BUILTIN_ADAPTER));
    }

    #[test]
    fn example_pipelines_prometheus_canary_parses_once_uncommented() {
        let text = include_str!("../../../examples/pipeline.toml");
        let mut on = false;
        let uncommented: String = text
            .lines()
            .map(|l| {
                on |= l.trim() == "# [environment.canary]";
                let line = if on {
                    l.replacen("# ", "", 1)
                } else {
                    l.to_string()
                };
                on &= l.trim() != "# critical = true";
                line + "\n"
            })
            .collect();
        let p = parse(&uncommented).unwrap();
        let canary = p.environments[2].canary.as_ref().expect("a canary");
        let source = canary.prometheus.as_ref().expect("a Prometheus source");
        assert_eq!(source.interval(), std::time::Duration::from_secs(30));
        assert!(source.metrics["error_rate"].critical);
    }

    #[test]
    fn example_canary_pipelines_parse() {
        for text in [
            include_str!("../../../examples/canary-prometheus-pipeline.toml"),
            include_str!("../../../examples/serving/python/pipeline.toml"),
        ] {
            let p = parse(text).unwrap();
            let canary = p.environments[0].canary.as_ref().expect("a canary");
            assert_eq!(canary.prometheus.as_ref().unwrap().metrics.len(), 2);
        }
    }

    #[test]
    fn gate_defaults_are_blocking_five_seconds_named_after_plugin() {
        let p = parse(
            "name = \"p\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"config-lint\"\n",
        )
        .unwrap();
        let g = &p.environments[0].gates[0];
        assert_eq!(g.name, "config-lint");
        assert!(g.blocking);
        assert_eq!(g.timeout, DEFAULT_GATE_TIMEOUT);
        assert_eq!(g.params, serde_json::json!({}));
        assert_eq!(p.environments[0].approvals, 0);
        assert!(p.environments[0].canary.is_none());
    }

    #[test]
    fn a_plugin_name_near_a_known_one_is_a_typo_reported_at_its_line() {
        let (line, msg) = error_at(
            "name = \"p\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"golden-evl\"\n",
        );
        assert_eq!(line, 5);
        assert!(msg.contains("did you mean \"golden-eval\"?"), "{msg}");
        assert!(msg.contains("config-lint, cost-estimator"), "{msg}");
        let (line, msg) =
            error_at("name = \"p\"\n[[environment]]\nname = \"dev\"\nadapter = \"adaptr-file\"\n");
        assert_eq!(line, 4);
        assert!(msg.contains("did you mean \"adapter-file\"?"), "{msg}");
        let (_, msg) =
            error_at("name = \"p\"\n[[environment]]\nname = \"dev\"\nadapter = \"golden-eval\"\n");
        assert!(msg.contains("is a gate plugin, not an adapter"), "{msg}");
    }

    #[test]
    fn a_name_far_from_every_known_one_may_be_pushed_later() {
        let p = parse(
            "name = \"p\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"answer-grader\"\n",
        )
        .expect("a new plugin's name loads");
        assert_eq!(p.environments[0].gates[0].plugin, "answer-grader");
        assert_eq!(did_you_mean("cfg", &["config-lint".to_string()]), None);
        assert_eq!(did_you_mean("drft", &["drift".to_string()]), Some("drift"));
    }

    #[test]
    fn duplicate_environment_and_unknown_key_and_bad_canary_name_their_lines() {
        let (line, msg) = error_at(
            "name = \"p\"\n[[environment]]\nname = \"dev\"\n[[environment]]\nname = \"dev\"\n",
        );
        assert_eq!(line, 5);
        assert!(msg.contains("appears twice"), "{msg}");

        let (line, msg) = error_at("name = \"p\"\n[[environment]]\nname = \"dev\"\naprovals = 1\n");
        assert_eq!(line, 4);
        assert!(msg.contains("aprovals"), "{msg}");

        let (line, msg) = error_at(
            "name = \"p\"\n[[environment]]\nname = \"dev\"\n[environment.canary]\nsteps = [50, 25]\n",
        );
        assert_eq!(line, 4);
        assert!(msg.contains("must rise strictly"), "{msg}");
    }

    #[test]
    fn empty_pipeline_and_bad_names_are_refused() {
        let (_, msg) = error_at("name = \"p\"\n");
        assert!(msg.contains("no environments"), "{msg}");
        let (line, msg) = error_at("name = \"Prod Line\"\n[[environment]]\nname = \"dev\"\n");
        assert_eq!(line, 1);
        assert!(msg.contains("a-z, 0-9"), "{msg}");
    }

    #[test]
    fn timeout_bounds_are_enforced() {
        let (line, msg) = error_at(
            "name = \"p\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"config-lint\"\ntimeout_ms = 0\n",
        );
        assert_eq!(line, 6);
        assert!(msg.contains("timeout_ms"), "{msg}");
    }

    #[test]
    fn canary_settings_are_kept() {
        let p = parse(
            "name = \"p\"\n[[environment]]\nname = \"prod\"\n[environment.canary]\nsteps = [5, 25, 50]\nstep_seconds = 30\non_inconclusive = \"pause\"\n",
        )
        .unwrap();
        let c = p.environments[0].canary.as_ref().unwrap();
        assert_eq!(c.steps, [5, 25, 50]);
        assert_eq!(c.step_seconds, 30);
        assert_eq!(c.min_samples, 50);
        assert_eq!(c.on_inconclusive, InconclusiveAction::Pause);
    }
}
