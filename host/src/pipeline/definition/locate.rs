//! Pointing at a plugin parameter in a pipeline file after it loaded: a
//! plugin says which parameter is wrong by its path (`live.base_url`), and
//! the author wants the line and column of that key.

use super::{Error, line_column};
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A pipeline file as it was read.
#[derive(Debug, Clone)]
pub struct Source {
    /// How errors name the file.
    pub file: String,
    pub text: String,
}

/// Whose parameters, by position in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamSite {
    /// `params` of gate `gate` of environment `env`.
    Gate { env: usize, gate: usize },
    /// `adapter_params` of environment `env`.
    Adapter { env: usize },
}

impl Source {
    pub fn read(path: &Path) -> Result<Source, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            file: path.display().to_string(),
            source,
        })?;
        Ok(Source {
            file: path.display().to_string(),
            text,
        })
    }

    /// An error at `path` (keys joined by `.`) within the parameters of
    /// `site`: at the deepest key of the path the file has, else at the
    /// parameters' table, else at what names the plugin.
    pub fn error_at(&self, site: ParamSite, path: &str, message: String) -> Error {
        let span = self.span_of(site, path).unwrap_or(0..0);
        let (line, column) = line_column(&self.text, span.start);
        Error::Invalid {
            file: self.file.clone(),
            line,
            column,
            message,
        }
    }

    fn span_of(&self, site: ParamSite, path: &str) -> Option<Range<usize>> {
        let doc = DeTable::parse(&self.text).ok()?;
        let environments = doc.get_ref().get("environment")?;
        let (env, owner_key, params_key) = match site {
            ParamSite::Gate { env, gate } => {
                let gates = environments.get_ref().get(env)?.get_ref().get("gate")?;
                (gates.get_ref().get(gate)?, "plugin", "params")
            }
            ParamSite::Adapter { env } => (
                environments.get_ref().get(env)?,
                "adapter",
                "adapter_params",
            ),
        };
        let Some((params_span, mut value)) = entry(env, params_key) else {
            return entry(env, owner_key).map(|(span, _)| span);
        };
        let mut span = params_span;
        for segment in path.split('.').filter(|s| !s.is_empty()) {
            let next = match value.get_ref() {
                DeValue::Array(_) => segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| value.get_ref().get(i))
                    .map(|v| (v.span(), v)),
                _ => entry(value, segment),
            };
            match next {
                Some((s, v)) => {
                    span = s;
                    value = v;
                }
                None => break,
            }
        }
        Some(span)
    }
}

/// The span of `key` itself (where a typo is) and its value, in a table.
fn entry<'a, 'i>(
    table: &'a Spanned<DeValue<'i>>,
    key: &str,
) -> Option<(Range<usize>, &'a Spanned<DeValue<'i>>)> {
    match table.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(k, v)| (k.span(), v)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"name = "p"

[[environment]]
name = "staging"
adapter = "adapter-file"
adapter_params = { dir = "deploy" }

  [[environment.gate]]
  plugin = "config-lint"

  [[environment.gate]]
  plugin = "latency"
  [environment.gate.params]
  p99_ms = 800
  live = { base_url = "127.0.0.1", requests = 10 }
"#;

    fn at(site: ParamSite, path: &str) -> (usize, usize) {
        let source = Source {
            file: "p.toml".into(),
            text: FILE.into(),
        };
        match source.error_at(site, path, String::new()) {
            Error::Invalid { line, column, .. } => (line, column),
            Error::Read { .. } => unreachable!("no file is read"),
        }
    }

    #[test]
    fn a_path_points_at_its_deepest_key_in_the_file() {
        let gate = ParamSite::Gate { env: 0, gate: 1 };
        assert_eq!(at(gate, "p99_ms"), (14, 3));
        assert_eq!(at(gate, "live.base_url"), (15, 12));
        // A key the file lacks (a missing field): where its table is.
        assert_eq!(at(gate, "live.max_in_flight"), (15, 3));
        assert_eq!(at(gate, ""), (13, 21));
        assert_eq!(at(ParamSite::Adapter { env: 0 }, "dir"), (6, 20));
    }

    #[test]
    fn parameters_the_file_does_not_write_point_at_the_plugin() {
        assert_eq!(
            at(ParamSite::Gate { env: 0, gate: 0 }, "max_temperature"),
            (9, 3)
        );
    }
}
