//! `demo`: a throw-away daemon on loopback and a temporary data directory,
//! the bundled pipeline, one good candidate and two that gates stop: one too
//! dear, one whose answers on the golden dataset regressed. Each is submitted
//! as CI would, with its outputs on the golden dataset attached.

use super::release::follow;
use super::render::Style;
use super::{EXIT_ERROR, EXIT_OK, Output, rpc};
use anyhow::Context;
use gatehouse::proto;
use gatehouse::server::{self, Settings};
use std::time::Instant;

const GOOD: &[u8] = include_bytes!("../../../examples/candidates/triage-v2.json");
const DEAR: &[u8] = include_bytes!("../../../examples/candidates/triage-v3-expensive.json");
const REGRESSED: &[u8] = include_bytes!("../../../examples/candidates/triage-v4-regressed.json");
const GOLDEN: &[u8] = include_bytes!("../../../examples/golden/triage.jsonl");
const GOOD_OUTPUTS: &[u8] = include_bytes!("../../../examples/outputs/triage-v2.outputs.jsonl");
const REGRESSED_OUTPUTS: &[u8] =
    include_bytes!("../../../examples/outputs/triage-v4-regressed.outputs.jsonl");

pub async fn run() -> anyhow::Result<u8> {
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
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
        "Pipeline model-config: dev (config-lint) → staging (golden-eval, cost-estimator) → production (golden-eval, cost-estimator)\n"
    );

    let mut client = gatehouse::client::connect(&addr, Some(&token)).await?;
    let style = Style::detect();
    let mut results = Vec::new();
    for (label, bytes, outputs) in [
        (
            "triage-v2.json: gpt-4o-mini, 16 output tokens",
            GOOD,
            GOOD_OUTPUTS,
        ),
        (
            "triage-v3-expensive.json: gpt-4-32k, 2048 output tokens",
            DEAR,
            GOOD_OUTPUTS,
        ),
        (
            "triage-v4-regressed.json: gpt-4.1-nano, shortened prompt",
            REGRESSED,
            REGRESSED_OUTPUTS,
        ),
    ] {
        println!("── submitting {label}");
        let started = Instant::now();
        let resp = client
            .releases
            .submit_release(proto::SubmitReleaseRequest {
                pipeline: "model-config".into(),
                candidate: bytes.to_vec(),
                metadata: [("source".to_string(), "gatehouse demo".to_string())].into(),
                attachments: [
                    ("golden.jsonl".to_string(), GOLDEN.to_vec()),
                    ("outputs.jsonl".to_string(), outputs.to_vec()),
                ]
                .into(),
            })
            .await
            .map_err(rpc)?
            .into_inner();
        let id = resp.release.context("no release in the answer")?.id;
        let done = follow(&mut client, id, Output::Text, style).await?;
        println!("   ({} ms)\n", started.elapsed().as_millis());
        results.push(done);
    }

    let prod = client
        .environments
        .get_config(proto::GetConfigRequest {
            environment: "production".into(),
        })
        .await
        .map_err(rpc)?
        .into_inner();
    let live = prod
        .active
        .as_ref()
        .map(|d| d.digest.as_str())
        .unwrap_or("nothing");
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
                "stopped at gate {} in {}: {}",
                r.failed_gate, r.environment, r.reason
            ),
        };
        println!("release {}: {phase}, {detail}", r.id);
    }
    println!("production now runs {}", &live[..12.min(live.len())]);
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
    Ok(if good_ok && bad_stopped && verify.ok {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}
