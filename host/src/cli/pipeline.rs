//! `pipeline check`: the checks `serve` runs on pipeline files, offline.

use super::{EXIT_ERROR, EXIT_OK};
use gatehouse::daemon;
use gatehouse::pipeline::definition::{BUILTIN_ADAPTER, Pipeline};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum PipelineCommand {
    /// Check pipeline files as `serve` does, without a daemon: TOML, names,
    /// stages, canary and approval settings, and the plugins they name
    /// (a near miss of a known name is a typo, with a did-you-mean).
    #[command(
        after_help = "EXAMPLES:\n  gatehouse pipeline check examples/*.toml\n  gatehouse pipeline check pipelines/ml.toml --plugin-dir plugins/"
    )]
    Check {
        /// Pipeline files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The daemon's plugin directory: its `.wasm` files count as known
        /// plugins, by file name.
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
    },
}

pub fn run(command: PipelineCommand) -> anyhow::Result<u8> {
    let PipelineCommand::Check { files, plugin_dir } = command;
    let catalog = daemon::catalog(None, plugin_dir.as_deref())?;
    let mut failed = false;
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in &files {
        match Pipeline::load(file, &catalog) {
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
            Ok(p) => {
                if let Some(first) = names.insert(p.name.clone(), file.clone()) {
                    failed = true;
                    eprintln!(
                        "error: {}: pipeline {:?} is also defined in {}; pipeline names are unique",
                        file.display(),
                        p.name,
                        first.display()
                    );
                    continue;
                }
                let gates: usize = p.environments.iter().map(|e| e.gates.len()).sum();
                println!(
                    "ok: {}: pipeline {}, {} ({} gates)",
                    file.display(),
                    p.name,
                    p.environments
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" → "),
                    gates
                );
                for env in &p.environments {
                    let unknown_gates = env
                        .gates
                        .iter()
                        .map(|g| &g.plugin)
                        .filter(|name| !catalog.gates.contains(*name));
                    for name in unknown_gates {
                        println!(
                            "  note: gate plugin {name:?} ({}) is not embedded or in the plugin directory; push it before releasing",
                            env.name
                        );
                    }
                    if env.adapter != BUILTIN_ADAPTER && !catalog.adapters.contains(&env.adapter) {
                        println!(
                            "  note: adapter {:?} ({}) is not embedded or in the plugin directory; push it before releasing",
                            env.adapter, env.name
                        );
                    }
                }
            }
        }
    }
    Ok(if failed { EXIT_ERROR } else { EXIT_OK })
}
