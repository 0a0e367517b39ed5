//! `demo`: a throw-away daemon on loopback and a temporary data directory,
//! `examples/standard-pipeline.toml` with every standard gate, one good
//! candidate and two that gates stop: one too dear, one whose answers on the
//! golden dataset regressed. Each is submitted as CI would, with its outputs
//! on the golden dataset, its replayed features and its latency samples
//! attached. adapter-file places what each stage promotes in a temporary
//! directory the demo grants it, as an admin would, in the daemon's config.

use super::release::follow;
use super::render::Style;
use super::{EXIT_ERROR, EXIT_OK, Output, rpc};
use anyhow::Context;
use gatehouse::digest::Digest;
use gatehouse::plugins::capabilities::Capability;
use gatehouse::plugins::capabilities::files::DataDir;
use gatehouse::plugins::manifest::Manifest;
use gatehouse::proto;
use gatehouse::server::{self, Settings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

const PIPELINE: &str = include_str!("../../../examples/standard-pipeline.toml");

const GOOD: &[u8] = include_bytes!("../../../examples/candidates/triage-v2.json");
const DEAR: &[u8] = include_bytes!("../../../examples/candidates/triage-v3-expensive.json");
const REGRESSED: &[u8] = include_bytes!("../../../examples/candidates/triage-v4-regressed.json");
const GOLDEN: &[u8] = include_bytes!("../../../examples/golden/triage.jsonl");
const GOOD_OUTPUTS: &[u8] = include_bytes!("../../../examples/outputs/triage-v2.outputs.jsonl");
const REGRESSED_OUTPUTS: &[u8] =
    include_bytes!("../../../examples/outputs/triage-v4-regressed.outputs.jsonl");
const GOOD_FEATURES: &[u8] = include_bytes!("../../../examples/outputs/triage-v2.features.jsonl");
const REGRESSED_FEATURES: &[u8] =
    include_bytes!("../../../examples/outputs/triage-v4-regressed.features.jsonl");
const GOOD_LATENCY: &[u8] = include_bytes!("../../../examples/outputs/triage-v2.latency.jsonl");
const REGRESSED_LATENCY: &[u8] =
    include_bytes!("../../../examples/outputs/triage-v4-regressed.latency.jsonl");

/// What CI measured of a candidate, attached to its submission.
struct Measured {
    outputs: &'static [u8],
    features: &'static [u8],
    latency: &'static [u8],
}

const GOOD_MEASURED: Measured = Measured {
    outputs: GOOD_OUTPUTS,
    features: GOOD_FEATURES,
    latency: GOOD_LATENCY,
};
const REGRESSED_MEASURED: Measured = Measured {
    outputs: REGRESSED_OUTPUTS,
    features: REGRESSED_FEATURES,
    latency: REGRESSED_LATENCY,
};

/// Grants the embedded adapter-file `deploy`, writable, as `/deploy`: the
/// directory the pipeline's `adapter_params` name.
fn grant_file_adapter(deploy: &Path) -> anyhow::Result<BTreeMap<String, Manifest>> {
    std::fs::create_dir_all(deploy)?;
    let manifest = Manifest {
        capabilities: [Capability::Log, Capability::Files].into(),
        files: vec![DataDir {
            host: deploy.to_path_buf(),
            guest: "/deploy".into(),
            writable: true,
        }],
        http: None,
    };
    Ok([("adapter-file".to_string(), manifest)].into())
}

pub async fn run() -> anyhow::Result<u8> {
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    let pipeline = dir.path().join("standard-pipeline.toml");
    std::fs::write(&pipeline, PIPELINE)?;
    let deploy = dir.path().join("deploy");
    let grants = grant_file_adapter(&deploy).context("granting adapter-file its directory")?;
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
        pipelines: vec![pipeline],
        grants,
        ..Settings::default()
    };
    let running = server::start(&settings).await?;
    let token = running
        .generated_admin_token
        .clone()
        .context("a fresh daemon should have generated a token")?;
    let addr = format!("http://{}", running.addr);
    println!(
        "Gatehouse demo: daemon on {addr}, data in {}",
        dir.path().display()
    );
    println!(
        "Pipeline standard: dev (config-lint) → staging (golden-eval, cost-estimator, drift, latency) → production (the same four, against what production runs)"
    );
    println!(
        "Each stage is placed by adapter-file in {}/<environment>/\n",
        deploy.display()
    );

    let mut client = gatehouse::client::connect(&addr, Some(&token)).await?;
    let style = Style::detect();
    let mut results = Vec::new();
    // triage-v3 answers as triage-v2 does, on a dearer model: it carries
    // v2's measurements, and only its price tells them apart.
    for (label, bytes, measured) in [
        (
            "triage-v2.json: gpt-4o-mini, 16 output tokens",
            GOOD,
            &GOOD_MEASURED,
        ),
        (
            "triage-v3-expensive.json: gpt-4-32k, 2048 output tokens",
            DEAR,
            &GOOD_MEASURED,
        ),
        (
            "triage-v4-regressed.json: gpt-4.1-nano, shortened prompt",
            REGRESSED,
            &REGRESSED_MEASURED,
        ),
    ] {
        println!("── submitting {label}");
        let started = Instant::now();
        let resp = client
            .releases
            .submit_release(proto::SubmitReleaseRequest {
                pipeline: "standard".into(),
                candidate: bytes.to_vec(),
                metadata: [("source".to_string(), "gatehouse demo".to_string())].into(),
                attachments: [
                    ("golden.jsonl".to_string(), GOLDEN.to_vec()),
                    ("outputs.jsonl".to_string(), measured.outputs.to_vec()),
                    ("features.jsonl".to_string(), measured.features.to_vec()),
                    ("latency.jsonl".to_string(), measured.latency.to_vec()),
                ]
                .into(),
                ..Default::default()
            })
            .await
            .map_err(rpc)?
            .into_inner();
        let id = resp.release.context("no release in the answer")?.id;
        let done = follow(&mut client, id, Output::Text, style).await?;
        println!("   ({} ms)\n", started.elapsed().as_millis());
        results.push(done);
    }

    // What the daemon recorded as live in each environment, beside what
    // adapter-file left where services read it.
    let mut placed = Vec::new();
    for env in ["dev", "staging", "production"] {
        let recorded = client
            .environments
            .get_config(proto::GetConfigRequest {
                environment: env.into(),
            })
            .await
            .map_err(rpc)?
            .into_inner()
            .active
            .map(|d| d.digest);
        placed.push((env, recorded, placed_by_adapter(&deploy, env)));
    }
    let verify = client
        .audit
        .verify_audit(proto::VerifyAuditRequest {})
        .await
        .map_err(rpc)?
        .into_inner();

    println!("── what happened");
    for r in &results {
        let phase = super::render::phase_name(r.phase);
        let detail = match phase {
            "Succeeded" => "reached production".to_string(),
            _ => format!(
                "stopped at gate {} in {}{}: {}",
                r.failed_gate,
                r.environment,
                also_failed(r),
                r.reason
            ),
        };
        println!("release {}: {phase}, {detail}", r.id);
    }
    let live = placed
        .iter()
        .find(|(env, ..)| *env == "production")
        .and_then(|(_, recorded, _)| recorded.as_deref())
        .unwrap_or("nothing");
    println!("production now runs {}", short(live));
    println!("adapter-file placed each environment's configuration where services read it:");
    let mut placed_ok = true;
    for (env, recorded, file) in &placed {
        match (recorded, file) {
            (Some(recorded), Some((file, held))) if held == recorded => {
                println!("  {env:<11} {}  {}", file.display(), short(held))
            }
            (recorded, file) => {
                placed_ok = false;
                println!(
                    "  {env:<11} MISMATCH: the daemon recorded {}, the file holds {}",
                    recorded.as_deref().map(short).unwrap_or("nothing"),
                    file.as_ref().map(|(_, d)| short(d)).unwrap_or("nothing")
                );
            }
        }
    }
    println!(
        "audit log: {} events, {}",
        verify.events_checked,
        if verify.ok {
            "hash chain intact"
        } else {
            "BROKEN"
        }
    );
    running.stop().await?;
    super::canary::scene::run().await?;

    let good_ok = results
        .first()
        .is_some_and(|r| super::render::phase_name(r.phase) == "Succeeded");
    let stopped_by = |i: usize, gate: &str| {
        results.get(i).is_some_and(|r| {
            super::render::phase_name(r.phase) == "Failed" && r.failed_gate == gate
        })
    };
    let bad_stopped = stopped_by(1, "cost-estimator") && stopped_by(2, "golden-eval");
    Ok(if good_ok && bad_stopped && placed_ok && verify.ok {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

/// The other gates that failed `r` in the stage that stopped it, e.g.
/// " (drift and latency failed it too)".
fn also_failed(r: &proto::Release) -> String {
    let others: Vec<&str> = r
        .stages
        .iter()
        .filter(|s| s.environment == r.environment)
        .flat_map(|s| &s.gates)
        .filter(|g| g.outcome == proto::Outcome::Fail as i32 && g.gate != r.failed_gate)
        .map(|g| g.gate.as_str())
        .collect();
    match others.as_slice() {
        [] => String::new(),
        [one] => format!(" ({one} failed it too)"),
        [first @ .., last] => format!(" ({} and {last} failed it too)", first.join(", ")),
    }
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// The file adapter-file placed for `environment`, and the sha256 of what
/// it holds: what a service reading it serves.
fn placed_by_adapter(deploy: &Path, environment: &str) -> Option<(PathBuf, String)> {
    let file = deploy.join(environment).join("active.json");
    let bytes = std::fs::read(&file).ok()?;
    Some((file, Digest::of(&bytes).hex()))
}
