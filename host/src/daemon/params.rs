//! A pipeline's plugin parameters, judged by the plugins themselves
//! (`check-params`) once they are installed: a mistake is refused at its
//! line in the pipeline file, never blamed on a candidate.

use crate::pipeline::definition::{self, ParamSite, Pipeline, Source};
use crate::plugins::params::Unasked;
use crate::plugins::{PluginKind, Plugins};

/// What the plugins said of one pipeline's parameters.
#[derive(Debug, Default)]
pub struct Checked {
    /// Parameters a plugin refused, each at its place in the file.
    pub refused: Vec<definition::Error>,
    /// Plugins built against a contract without `check-params`. (Plugins
    /// not installed are not asked.)
    pub unchecked: Vec<String>,
}

/// Who takes the parameters at `site`, for messages.
fn whose(pipeline: &Pipeline, site: ParamSite) -> String {
    match site {
        ParamSite::Gate { env, gate } => {
            let e = &pipeline.environments[env];
            format!("gate {:?} in environment {:?}", e.gates[gate].name, e.name)
        }
        ParamSite::Adapter { env } => {
            format!(
                "the adapter of environment {:?}",
                pipeline.environments[env].name
            )
        }
    }
}

/// Asks every plugin `pipeline` names about its parameters.
pub async fn check(pipeline: &Pipeline, source: &Source, plugins: &Plugins) -> Checked {
    let mut checked = Checked::default();
    for (site, plugin, params) in pipeline.param_sites() {
        let kind = match site {
            ParamSite::Gate { .. } => PluginKind::Gate,
            ParamSite::Adapter { .. } => PluginKind::Adapter,
        };
        match plugins.refusal(kind, plugin, params).await {
            Ok(None) => {}
            Ok(Some((path, problem))) => checked.refused.push(source.error_at(
                site,
                &path,
                format!(
                    "{} (plugin {plugin}) refuses {problem}; fix it in the pipeline",
                    whose(pipeline, site)
                ),
            )),
            Err(Unasked::Predates(why)) => checked
                .unchecked
                .push(format!("{}: {why}", whose(pipeline, site))),
            Err(Unasked::NotInstalled(_)) => {}
        }
    }
    checked
}
