//! `env list`, `rollback`, `config` and `drift`.

use super::{Ctx, EXIT_DRIFTED, EXIT_ERROR, EXIT_OK, Output, rpc};
use gatehouse::proto;
use serde_json::json;

#[derive(clap::Args)]
pub struct RollbackArgs {
    /// The environment to roll back.
    pub environment: String,
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(clap::Args)]
pub struct ConfigArgs {
    pub environment: String,
    /// Keep printing each new configuration as it goes live.
    #[arg(long)]
    pub watch: bool,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Args)]
pub struct DriftArgs {
    /// The environment to check; every environment when left out.
    pub environment: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Subcommand)]
pub enum EnvCommand {
    /// Every environment: what is live, since when, and any canary.
    #[command(
        after_help = "EXAMPLES:\n  gatehouse env list\n  gatehouse env list -o json | jq '.[] | select(.canary)'"
    )]
    List {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
}

pub async fn env(ctx: &Ctx, command: EnvCommand) -> anyhow::Result<u8> {
    let EnvCommand::List { output } = command;
    let mut client = ctx.connect().await?;
    let envs = client
        .environments
        .list_environments(proto::ListEnvironmentsRequest {})
        .await
        .map_err(rpc)?
        .into_inner()
        .environments;
    let now = super::render::now_ms();
    match output {
        Output::Json => {
            let all: Vec<_> = envs
                .iter()
                .map(|c| {
                    json!({
                        "environment": c.environment,
                        "generation": c.generation,
                        "digest": c.active.as_ref().map(|d| d.digest.clone()),
                        "release_id": c.active.as_ref().map(|d| d.release_id),
                        "deployed_at_ms": c.active.as_ref().map(|d| d.deployed_at_ms),
                        "canary": c.canary.as_ref().map(|d| json!({
                            "digest": d.digest,
                            "release_id": d.release_id,
                            "weight_percent": c.canary_weight_percent,
                        })),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(all));
        }
        Output::Text => {
            println!(
                "{:<14} {:<22} {:<10} CANARY",
                "ENVIRONMENT", "LIVE", "DEPLOYED"
            );
            for c in &envs {
                let (live, age) = match &c.active {
                    Some(d) => (
                        format!("{} (#{})", short(&d.digest), d.release_id),
                        super::render::age(now, d.deployed_at_ms),
                    ),
                    None => ("nothing yet".to_string(), "-".to_string()),
                };
                let canary = c
                    .canary
                    .as_ref()
                    .map(|d| {
                        format!(
                            "{} (#{}) at {}%",
                            short(&d.digest),
                            d.release_id,
                            c.canary_weight_percent
                        )
                    })
                    .unwrap_or_else(|| "-".into());
                println!("{:<14} {:<22} {:<10} {canary}", c.environment, live, age);
            }
        }
    }
    Ok(EXIT_OK)
}

pub async fn rollback(ctx: &Ctx, a: RollbackArgs) -> anyhow::Result<u8> {
    let mut client = ctx.connect().await?;
    let r = client
        .environments
        .rollback_environment(proto::RollbackEnvironmentRequest {
            environment: a.environment.clone(),
            reason: a.reason,
        })
        .await
        .map_err(rpc)?
        .into_inner();
    let live = r
        .config
        .and_then(|c| c.active)
        .map(|d| d.digest)
        .unwrap_or_default();
    println!(
        "{}: rolled back from {} to {}",
        a.environment,
        short(&r.rolled_back_digest),
        short(&live)
    );
    Ok(EXIT_OK)
}

pub async fn config(ctx: &Ctx, a: ConfigArgs) -> anyhow::Result<u8> {
    let mut client = ctx.connect().await?;
    if !a.watch {
        let c = client
            .environments
            .get_config(proto::GetConfigRequest {
                environment: a.environment,
            })
            .await
            .map_err(rpc)?
            .into_inner();
        print_config(&c, a.output);
        return Ok(EXIT_OK);
    }
    let mut stream = client
        .environments
        .watch_config(proto::WatchConfigRequest {
            environment: a.environment,
            after_generation: 0,
        })
        .await
        .map_err(rpc)?
        .into_inner();
    while let Some(c) = stream.message().await.map_err(rpc)? {
        print_config(&c, a.output);
    }
    Ok(EXIT_OK)
}

fn print_config(c: &proto::ActiveConfig, output: Output) {
    let active = c.active.as_ref();
    let canary = c.canary.as_ref();
    let arm = |d: Option<&proto::Deployment>| {
        d.map(|d| {
            json!({
                "digest": d.digest,
                "release_id": d.release_id,
                "config": serde_json::from_slice::<serde_json::Value>(&d.config).ok(),
            })
        })
    };
    match output {
        Output::Json => println!(
            "{}",
            json!({
                "environment": c.environment,
                "generation": c.generation,
                "digest": active.map(|d| d.digest.clone()),
                "release_id": active.map(|d| d.release_id),
                "config": active.and_then(|d| serde_json::from_slice::<serde_json::Value>(&d.config).ok()),
                "canary": arm(canary),
                "canary_weight_percent": c.canary_weight_percent,
            })
        ),
        Output::Text => {
            match active {
                None => println!(
                    "{} (generation {}): nothing deployed yet",
                    c.environment, c.generation
                ),
                Some(d) => println!(
                    "{} (generation {}): {} from release {}\n{}",
                    c.environment,
                    c.generation,
                    short(&d.digest),
                    d.release_id,
                    String::from_utf8_lossy(&d.config)
                ),
            }
            if let Some(d) = canary {
                println!(
                    "canary: {} from release {} serves {}% of requests\n{}",
                    short(&d.digest),
                    d.release_id,
                    c.canary_weight_percent,
                    String::from_utf8_lossy(&d.config)
                );
            }
        }
    }
}

fn short(digest: &str) -> &str {
    &digest[..12.min(digest.len())]
}

/// Asks each environment's adapter what is live and prints how it compares
/// with what Gatehouse made live. Exits 6 when one has drifted, 1 when one
/// could not be read.
pub async fn drift(ctx: &Ctx, a: DriftArgs) -> anyhow::Result<u8> {
    let mut client = ctx.connect().await?;
    let reports = client
        .environments
        .check_drift(proto::CheckDriftRequest {
            environment: a.environment.unwrap_or_default(),
        })
        .await
        .map_err(rpc)?
        .into_inner()
        .reports;
    let status = |r: &proto::DriftReport| {
        proto::DriftStatus::try_from(r.status).unwrap_or(proto::DriftStatus::Unspecified)
    };
    for r in &reports {
        match a.output {
            Output::Json => println!(
                "{}",
                json!({
                    "environment": r.environment,
                    "adapter": r.adapter,
                    "status": status(r).as_str_name().trim_start_matches("DRIFT_STATUS_").to_ascii_lowercase(),
                    "expected": r.expected.as_ref().map(placement_json),
                    "live": r.live.as_ref().map(placement_json),
                    "differences": r.differences,
                    "detail": r.detail,
                })
            ),
            Output::Text => {
                let said = match status(r) {
                    proto::DriftStatus::InSync => "in sync".to_string(),
                    proto::DriftStatus::Drifted => format!("DRIFTED: {}", r.differences.join("; ")),
                    proto::DriftStatus::Changing => {
                        "changing: a release is acting on it now; check again".to_string()
                    }
                    proto::DriftStatus::Unreadable => format!("could not be read: {}", r.detail),
                    proto::DriftStatus::BuiltIn => {
                        "built-in config store, cannot drift".to_string()
                    }
                    proto::DriftStatus::Unspecified => "unknown".to_string(),
                };
                println!("{} ({}): {said}", r.environment, r.adapter);
            }
        }
    }
    let any = |s: proto::DriftStatus| reports.iter().any(|r| status(r) == s);
    Ok(if any(proto::DriftStatus::Drifted) {
        EXIT_DRIFTED
    } else if any(proto::DriftStatus::Unreadable) {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

fn placement_json(p: &proto::Placement) -> serde_json::Value {
    json!({
        "active": (!p.active.is_empty()).then_some(&p.active),
        "canary": (!p.canary.is_empty()).then_some(&p.canary),
        "canary_weight_percent": p.canary_weight_percent,
    })
}
