//! `[environment.canary]`: progressive delivery of one environment — the
//! traffic steps, how long each is observed, how the canary is judged, and
//! the optional watch after full promotion.
//!
//! Rules: the judge's own settings (metrics, score bands, divergence
//! tolerances) come from a canary config file (`config = "canary.toml"`,
//! relative to the pipeline file) or from an inline
//! `[environment.canary.judge]` table with the same keys, or else from the
//! judge's defaults; `alpha`, `min_samples` and `on_inconclusive` set here
//! override the judge's. The resolved settings are validated at load and
//! copied into each release with the rest of the pipeline, so editing
//! `canary.toml` never changes a canary already under way.

use crate::canary::source::PrometheusSource;
use crate::canary::{self, CanaryConfig, OnInconclusive};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Progressive delivery settings of an environment, as a release keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanarySpec {
    /// Canary traffic weights in percent, ascending, e.g. `[5, 25, 50]`.
    pub steps: Vec<u32>,
    /// How long each step observes before its final look.
    pub step_seconds: u64,
    /// The same in milliseconds, when set (short canaries in tests and demos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_ms: Option<u64>,
    /// Fewer observations than this per arm is "not enough data", never a pass.
    pub min_samples: u64,
    /// False-alarm rate of the statistical tests.
    pub alpha: f64,
    pub on_inconclusive: InconclusiveAction,
    /// Extra step durations a step may observe when it cannot decide; once
    /// spent, a canary that still cannot decide is rolled back.
    #[serde(default = "default_max_extensions")]
    pub max_extensions: u32,
    /// How long to keep judging after full promotion; 0 is no watch.
    #[serde(default)]
    pub watch_ms: u64,
    /// The judge's settings as canary-config TOML (empty: the defaults).
    #[serde(default)]
    pub judge: String,
    /// Where `judge` came from, to name it in messages.
    #[serde(default)]
    pub judge_source: String,
    /// Metrics read from Prometheus, judged at each step's final look
    /// beside (or instead of) reported observations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSource>,
}

/// What to do when a canary step ends without enough evidence either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InconclusiveAction {
    /// Observe for another step's duration (at most `max_extensions` times).
    #[default]
    Extend,
    /// Hold the step where it stands until an operator approves it; a
    /// regression still rolls it back meanwhile.
    Pause,
    /// Roll back.
    Fail,
}

impl From<OnInconclusive> for InconclusiveAction {
    fn from(o: OnInconclusive) -> Self {
        match o {
            OnInconclusive::Extend => InconclusiveAction::Extend,
            OnInconclusive::Pause => InconclusiveAction::Pause,
            OnInconclusive::Fail => InconclusiveAction::Fail,
        }
    }
}

impl From<InconclusiveAction> for OnInconclusive {
    fn from(a: InconclusiveAction) -> Self {
        match a {
            InconclusiveAction::Extend => OnInconclusive::Extend,
            InconclusiveAction::Pause => OnInconclusive::Pause,
            InconclusiveAction::Fail => OnInconclusive::Fail,
        }
    }
}

impl CanarySpec {
    /// How long one step observes.
    pub fn step_duration(&self) -> Duration {
        match self.step_ms {
            Some(ms) => Duration::from_millis(ms),
            None => Duration::from_secs(self.step_seconds),
        }
    }

    /// How long the watch after full promotion lasts, if there is one.
    pub fn watch_duration(&self) -> Option<Duration> {
        (self.watch_ms > 0).then(|| Duration::from_millis(self.watch_ms))
    }

    /// The judge's config: the resolved TOML with this table's overrides.
    pub fn judge_config(&self) -> Result<CanaryConfig, canary::Error> {
        let source = if self.judge_source.is_empty() {
            "canary settings"
        } else {
            &self.judge_source
        };
        let mut config = CanaryConfig::parse(source, &self.judge)?;
        config.alpha = self.alpha;
        config.min_samples = self.min_samples;
        config.on_inconclusive = self.on_inconclusive.into();
        config.validate(source)?;
        Ok(config)
    }
}

/// The table as written in a pipeline file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanary {
    steps: Vec<u32>,
    step_seconds: Option<u64>,
    step_ms: Option<u64>,
    min_samples: Option<u64>,
    alpha: Option<f64>,
    on_inconclusive: Option<InconclusiveAction>,
    max_extensions: Option<u32>,
    watch_seconds: Option<u64>,
    watch_ms: Option<u64>,
    /// A canary config file, relative to the pipeline file.
    config: Option<String>,
    /// The same settings inline.
    judge: Option<toml::Table>,
    prometheus: Option<PrometheusSource>,
}

fn default_max_extensions() -> u32 {
    3
}

const MAX_EXTENSIONS: u32 = 100;

/// Resolves and validates a pipeline's canary table; `base` is the
/// directory a `config` path is relative to.
pub(super) fn resolve(raw: RawCanary, base: &Path) -> Result<CanarySpec, String> {
    let (judge, judge_source) = match (raw.config, raw.judge) {
        (Some(_), Some(_)) => {
            return Err(
                "canary has both `config` and a [environment.canary.judge] table; keep one".into(),
            );
        }
        (Some(path), None) => {
            let full = base.join(&path);
            let text = std::fs::read_to_string(&full).map_err(|e| {
                format!(
                    "canary.config {path:?}: cannot read {}: {e}; the path is relative to the pipeline file",
                    full.display()
                )
            })?;
            (text, full.display().to_string())
        }
        (None, Some(table)) => (
            toml::to_string(&table)
                .map_err(|e| format!("[environment.canary.judge] cannot be read: {e}"))?,
            "[environment.canary.judge]".to_string(),
        ),
        (None, None) => (String::new(), "canary defaults".to_string()),
    };
    let judged = CanaryConfig::parse(&judge_source, &judge).map_err(|e| e.to_string())?;
    if raw.step_seconds.is_some() && raw.step_ms.is_some() {
        return Err("canary has both step_seconds and step_ms; keep one".into());
    }
    if raw.watch_seconds.is_some() && raw.watch_ms.is_some() {
        return Err("canary has both watch_seconds and watch_ms; keep one".into());
    }
    let spec = CanarySpec {
        steps: raw.steps,
        step_seconds: raw.step_seconds.unwrap_or(60),
        step_ms: raw.step_ms,
        min_samples: raw.min_samples.unwrap_or(judged.min_samples),
        alpha: raw.alpha.unwrap_or(judged.alpha),
        on_inconclusive: raw.on_inconclusive.unwrap_or(judged.on_inconclusive.into()),
        max_extensions: raw.max_extensions.unwrap_or(default_max_extensions()),
        watch_ms: match (raw.watch_seconds, raw.watch_ms) {
            (Some(s), _) => s.saturating_mul(1000),
            (None, Some(ms)) => ms,
            (None, None) => 0,
        },
        judge,
        judge_source,
        prometheus: raw.prometheus,
    };
    if let Some(p) = &spec.prometheus {
        p.validate()?;
    }
    check(&spec)?;
    spec.judge_config().map_err(|e| e.to_string())?;
    Ok(spec)
}

fn check(c: &CanarySpec) -> Result<(), String> {
    if c.steps.is_empty() {
        return Err(
            "canary.steps is empty; list traffic weights in percent, e.g. [5, 25, 50]".into(),
        );
    }
    if c.steps.iter().any(|s| *s == 0 || *s > 100) || c.steps.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!(
            "canary.steps {:?} must rise strictly, each between 1 and 100 (percent)",
            c.steps
        ));
    }
    if c.step_duration().is_zero() {
        return Err("canary.step_seconds (or step_ms) must be at least 1".into());
    }
    if !(c.alpha > 0.0 && c.alpha < 0.5) {
        return Err(format!(
            "canary.alpha {} must be between 0 and 0.5 (e.g. 0.01)",
            c.alpha
        ));
    }
    if c.min_samples < 2 {
        return Err("canary.min_samples must be at least 2; 50 is a sound floor".into());
    }
    if c.max_extensions > MAX_EXTENSIONS {
        return Err(format!(
            "canary.max_extensions {} is over {MAX_EXTENSIONS}; a canary that cannot decide should end",
            c.max_extensions
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::fixed_catalog;
    use super::super::{Error, Pipeline};
    use super::*;
    use crate::canary::Metric;

    fn parse_in(dir: &Path, canary: &str) -> Result<CanarySpec, String> {
        let file = dir.join("p.toml");
        let text = format!(
            "name = \"p\"\n[[environment]]\nname = \"prod\"\n[environment.canary]\n{canary}"
        );
        match Pipeline::parse(&file.display().to_string(), &text, &fixed_catalog()) {
            Ok(mut p) => Ok(p.environments.remove(0).canary.unwrap()),
            Err(Error::Invalid { message, .. }) => Err(message),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn defaults_give_a_working_judge_and_no_watch() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse_in(dir.path(), "steps = [10]\n").unwrap();
        assert_eq!(c.step_duration(), Duration::from_secs(60));
        assert_eq!(c.watch_duration(), None);
        assert_eq!(c.max_extensions, 3);
        assert_eq!(c.judge_config().unwrap(), CanaryConfig::default());
    }

    #[test]
    fn config_file_is_read_relative_to_the_pipeline_and_table_keys_override_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("canary.toml"),
            "alpha = 0.05\nmin_samples = 80\n[metrics.label_divergence]\ncritical = true\n",
        )
        .unwrap();
        let c = parse_in(
            dir.path(),
            "steps = [5, 50]\nstep_ms = 250\nwatch_seconds = 2\nconfig = \"canary.toml\"\nmin_samples = 30\n",
        )
        .unwrap();
        assert_eq!(c.step_duration(), Duration::from_millis(250));
        assert_eq!(c.watch_duration(), Some(Duration::from_secs(2)));
        let j = c.judge_config().unwrap();
        assert_eq!(j.alpha, 0.05);
        assert_eq!(j.min_samples, 30);
        assert!(j.metric(Metric::LabelDivergence).critical);
    }

    #[test]
    fn inline_judge_table_is_validated_with_its_key_named() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse_in(
            dir.path(),
            "steps = [5]\n[environment.canary.judge.metrics.cost]\ncritical = true\n",
        )
        .unwrap();
        assert!(c.judge_config().unwrap().metric(Metric::Cost).critical);
        let err = parse_in(
            dir.path(),
            "steps = [5]\n[environment.canary.judge.metrics.latency_mean]\nweight = -1.0\n",
        )
        .unwrap_err();
        assert!(err.contains("metrics.latency_mean.weight"), "{err}");
    }

    #[test]
    fn missing_config_file_and_conflicting_keys_say_what_to_change() {
        let dir = tempfile::tempdir().unwrap();
        let err = parse_in(dir.path(), "steps = [5]\nconfig = \"nope.toml\"\n").unwrap_err();
        assert!(
            err.contains("nope.toml") && err.contains("relative to the pipeline"),
            "{err}"
        );
        let err = parse_in(dir.path(), "steps = [5]\nstep_seconds = 1\nstep_ms = 5\n").unwrap_err();
        assert!(err.contains("keep one"), "{err}");
        let err = parse_in(dir.path(), "steps = [5]\nmax_extensions = 1000\n").unwrap_err();
        assert!(err.contains("max_extensions"), "{err}");
    }

    #[test]
    fn release_records_written_before_steps_had_settings_still_read() {
        let old = r#"{"steps":[5,25],"step_seconds":30,"min_samples":50,"alpha":0.01,"on_inconclusive":"pause"}"#;
        let c: CanarySpec = serde_json::from_str(old).unwrap();
        assert_eq!(c.step_duration(), Duration::from_secs(30));
        assert_eq!(c.max_extensions, 3);
        assert_eq!(
            c.judge_config().unwrap().on_inconclusive,
            OnInconclusive::Pause
        );
    }
}
