//! `pipeline check`: the checks `serve` runs on pipeline files, offline;
//! `pipeline list`: what a running daemon serves.

use super::{Ctx, EXIT_ERROR, EXIT_OK, Output, rpc};
use gatehouse::daemon;
use gatehouse::pipeline::definition::{BUILTIN_ADAPTER, Pipeline, Source};
use gatehouse::plugins::{Plugins, builtin, compile_cache};
use gatehouse::proto;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// The pipelines a running daemon serves, with their stages in order.
    #[command(
        after_help = "EXAMPLES:\n  gatehouse pipeline list\n  gatehouse pipeline list -o json"
    )]
    List {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
}

pub async fn run(ctx: &Ctx, command: PipelineCommand) -> anyhow::Result<u8> {
    match command {
        PipelineCommand::Check { files, plugin_dir } => {
            tokio::task::spawn_blocking(move || check(files, plugin_dir)).await?
        }
        PipelineCommand::List { output } => list(ctx, output).await,
    }
}

async fn list(ctx: &Ctx, output: Output) -> anyhow::Result<u8> {
    let mut client = ctx.connect().await?;
    let pipelines = client
        .releases
        .list_pipelines(proto::ListPipelinesRequest {})
        .await
        .map_err(rpc)?
        .into_inner()
        .pipelines;
    match output {
        Output::Json => {
            let all: Vec<_> = pipelines
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "name": p.name,
                        "four_eyes": p.four_eyes,
                        "stages": p.stages.iter().map(|s| serde_json::json!({
                            "environment": s.environment,
                            "adapter": s.adapter,
                            "gates": s.gates,
                            "approvals_required": s.approvals_required,
                            "canary": s.canary,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(all));
        }
        Output::Text => {
            for p in &pipelines {
                let route: Vec<_> = p.stages.iter().map(|s| s.environment.as_str()).collect();
                let four_eyes = if p.four_eyes { " (four eyes)" } else { "" };
                println!("{}: {}{four_eyes}", p.name, route.join(" → "));
                for s in &p.stages {
                    let mut facts = vec![format!("adapter {}", s.adapter)];
                    if !s.gates.is_empty() {
                        facts.push(format!("gates {}", s.gates.join(", ")));
                    }
                    if s.approvals_required > 0 {
                        facts.push(format!("{} approval(s)", s.approvals_required));
                    }
                    if s.canary {
                        facts.push("canary".into());
                    }
                    println!("  {:<14} {}", s.environment, facts.join("; "));
                }
            }
        }
    }
    Ok(EXIT_OK)
}

/// The plugins `pipeline check` can ask about their parameters: the
/// embedded ones and the plugin directory's, compiled (or taken from the
/// compile cache the daemon shares) and loaded with no grants, which
/// `check-params` needs none of.
fn plugins_here(plugin_dir: Option<&Path>) -> anyhow::Result<Plugins> {
    let plugins = Plugins::with_compile_cache(compile_cache::default_dir())?;
    let mut wasm: Vec<(String, Vec<u8>)> = builtin::embedded()
        .iter()
        .map(|e| (e.file_name(), e.wasm.to_vec()))
        .collect();
    if let Some(dir) = plugin_dir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().is_some_and(|x| x == "wasm")
                && let Ok(bytes) = std::fs::read(&path)
            {
                wasm.push((path.display().to_string(), bytes));
            }
        }
    }
    for (name, bytes) in wasm {
        if let Err(e) = plugins.install_for_checking(&name, &bytes) {
            println!("  note: {name} cannot be loaded here to check parameters: {e}");
        }
    }
    Ok(plugins)
}

fn check(files: Vec<PathBuf>, plugin_dir: Option<PathBuf>) -> anyhow::Result<u8> {
    let catalog = daemon::catalog(None, plugin_dir.as_deref())?;
    let mut failed = false;
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut plugins = None;
    for file in &files {
        let loaded = Source::read(file).and_then(|source| {
            Pipeline::parse(&source.file, &source.text, &catalog).map(|p| (p, source))
        });
        match loaded {
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
            Ok((p, source)) => {
                let plugins = match &mut plugins {
                    Some(plugins) => plugins,
                    None => plugins.insert(plugins_here(plugin_dir.as_deref())?),
                };
                let checked = plugins.block_on(daemon::params::check(&p, &source, plugins));
                if !checked.refused.is_empty() {
                    failed = true;
                    for e in &checked.refused {
                        eprintln!("error: {e}");
                    }
                    continue;
                }
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
                for note in &checked.unchecked {
                    println!("  note: {note}");
                }
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
