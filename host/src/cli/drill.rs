//! `drill ENV`: exercises the automatic rollback path in an environment —
//! its live configuration runs as a canary at 1%, the daemon takes the
//! canary down the way it takes down a failed one — and prints the recovery
//! time the daemon recorded in the audit log.

use super::{Ctx, EXIT_ERROR, EXIT_OK, Output, rpc};
use anyhow::Context;
use gatehouse::proto;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct DrillArgs {
    /// The environment to drill; it must have something live.
    pub environment: String,
    /// Drill an environment named `production` (refused without it).
    #[arg(long)]
    pub force: bool,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

pub async fn run(ctx: &Ctx, a: DrillArgs) -> anyhow::Result<u8> {
    let mut c = ctx.connect().await?;
    // Watch as a serving service would, to confirm the restored
    // configuration reaches a subscriber over the network too.
    let mut watch = c
        .environments
        .watch_config(proto::WatchConfigRequest {
            environment: a.environment.clone(),
            after_generation: 0,
        })
        .await
        .map_err(rpc)?
        .into_inner();
    watch
        .message()
        .await
        .map_err(rpc)?
        .context("the daemon closed the configuration stream")?;
    let started = Instant::now();
    let report = c
        .canaries
        .run_drill(proto::RunDrillRequest {
            environment: a.environment.clone(),
            force: a.force,
        })
        .await
        .map_err(rpc)?
        .into_inner();
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(config) = watch.message().await.map_err(rpc)? {
            if config.generation >= report.generation && config.canary.is_none() {
                return Ok::<_, anyhow::Error>(true);
            }
        }
        Ok(false)
    })
    .await
    .unwrap_or(Ok(false))?;
    let recovery_ms = report.recovery_us as f64 / 1e3;
    match a.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "environment": report.environment,
                "digest": report.digest,
                "weight_percent": report.weight_percent,
                "generation": report.generation,
                "recovery_ms": recovery_ms,
                "seen_by_this_client": seen,
                "drill_ms": started.elapsed().as_secs_f64() * 1e3,
            })
        ),
        Output::Text => {
            let short = &report.digest[..12.min(report.digest.len())];
            println!(
                "drill in {}: the live configuration {short} ran as a canary at {}% and was rolled back",
                report.environment, report.weight_percent
            );
            println!(
                "recovery: {recovery_ms:.3} ms from the rollback decision to the restored configuration at a watcher (recorded in the audit log)"
            );
            println!(
                "this client's WatchConfig stream {} generation {}",
                if seen {
                    "received the restored"
                } else {
                    "did NOT receive"
                },
                report.generation
            );
        }
    }
    Ok(if seen { EXIT_OK } else { EXIT_ERROR })
}
