//! `gatehouse plugin test`: one call of a plugin's `.wasm` in the daemon's
//! own sandbox, with no daemon, from a request file.

use super::{TestArgs, read};
use crate::cli::{EXIT_ERROR, EXIT_GATE_FAILED, EXIT_OK, Output};
use anyhow::{Context, bail};
use gatehouse::digest::Digest;
use gatehouse::plugins::capabilities::attachments::Files;
use gatehouse::plugins::manifest::Manifest;
use gatehouse::plugins::sandbox::Limits;
use gatehouse::plugins::{
    AdapterCall, Attachments, CALL_MEMORY_LIMIT, CandidateView, GateInput, PluginKind, Plugins,
};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A candidate given in a request file: a JSON document, or a string taken
/// as the candidate's exact bytes.
fn candidate(value: &serde_json::Value) -> CandidateView {
    let bytes = match value {
        serde_json::Value::String(s) => s.clone().into_bytes(),
        other => serde_json::to_vec_pretty(other).unwrap_or_default(),
    };
    CandidateView {
        digest: Digest::of(&bytes),
        bytes: Arc::new(bytes),
        metadata: Vec::new(),
    }
}

/// The candidate a request file names as `KEY` (a JSON document, or a
/// string taken as exact bytes) or as `KEY_file` (a path relative to the
/// request file, read as it is).
fn given_candidate(
    request: &serde_json::Value,
    key: &str,
    base: &Path,
) -> anyhow::Result<Option<CandidateView>> {
    if let Some(path) = request.get(format!("{key}_file")).and_then(|p| p.as_str()) {
        let bytes = read(&base.join(path))?;
        return Ok(Some(CandidateView {
            digest: Digest::of(&bytes),
            bytes: Arc::new(bytes),
            metadata: Vec::new(),
        }));
    }
    Ok(request.get(key).map(candidate))
}

/// Attachments given in a request file: `{"NAME": "contents"}` or
/// `{"NAME": {"file": "path"}}`, a path relative to the request file.
fn attached(value: &serde_json::Value, base: &Path) -> anyhow::Result<Files> {
    let mut files = Files::new();
    let serde_json::Value::Object(entries) = value else {
        if value.is_null() {
            return Ok(files);
        }
        bail!(
            "\"attachments\" must be an object of file names, e.g. {{\"outputs.jsonl\": {{\"file\": \"outputs.jsonl\"}}}}"
        );
    };
    for (name, entry) in entries {
        let bytes = match entry {
            serde_json::Value::String(text) => text.clone().into_bytes(),
            serde_json::Value::Object(o) => match o.get("file").and_then(|f| f.as_str()) {
                Some(path) => read(&base.join(path))?,
                None => bail!(
                    "attachment {name:?}: write {{\"file\": \"path\"}} or the contents as a string"
                ),
            },
            _ => bail!(
                "attachment {name:?}: write {{\"file\": \"path\"}} or the contents as a string"
            ),
        };
        files.insert(name.clone(), Arc::new(bytes));
    }
    Ok(files)
}

pub(super) fn test(a: TestArgs) -> anyhow::Result<u8> {
    let wasm = read(&a.plugin)?;
    let request: serde_json::Value = serde_json::from_slice(&read(&a.request)?)
        .with_context(|| format!("{} is not JSON", a.request.display()))?;
    let plugins = Plugins::with_compile_cache(gatehouse::plugins::compile_cache::default_dir())?;
    let source_name = a.plugin.display().to_string();
    let component = plugins.compile(&source_name, &wasm)?;
    let description = plugins.describe(&source_name, &component)?;
    let manifest = match &a.manifest {
        Some(p) => Manifest::parse(
            &std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the manifest {}", p.display()))?,
        )
        .map_err(anyhow::Error::msg)?,
        None => Manifest::for_embedded(&description.capabilities),
    };
    let plugin = plugins.prepare(
        &source_name,
        Digest::of(&wasm),
        &component,
        manifest,
        Some(description),
    )?;
    let limits = Limits {
        timeout: Duration::from_millis(a.timeout_ms),
        fuel: a.fuel,
        memory: CALL_MEMORY_LIMIT,
    };
    let field = |name: &str| {
        request
            .get(name)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    let params = match field("params") {
        serde_json::Value::Null => json!({}),
        p => p,
    };
    let label = format!(
        "{} {} ({})",
        plugin.description.name,
        plugin.description.version,
        plugin.digest.short()
    );
    match plugin.description.kind {
        PluginKind::Gate => {
            let base = a.request.parent().unwrap_or(Path::new("."));
            let Some(c) = given_candidate(&request, "candidate", base)? else {
                bail!(
                    "the request has no \"candidate\" (or \"candidate_file\"); a gate judges one"
                );
            };
            let input = GateInput {
                candidate: c,
                incumbent: given_candidate(&request, "incumbent", base)?,
                stage: field("stage").as_str().unwrap_or("staging").to_string(),
                params,
                attachments: Arc::new(Attachments {
                    candidate: attached(&field("attachments"), base)?,
                    incumbent: attached(&field("incumbent_attachments"), base)?,
                }),
            };
            let started = Instant::now();
            let result = plugins.evaluate_blocking(&plugin, &input, limits);
            let elapsed = started.elapsed();
            let v = match result {
                Ok(v) => v,
                Err(e) => {
                    if a.output == Output::Json {
                        println!("{}", json!({ "plugin": label, "error": e.to_string() }));
                    } else {
                        println!(
                            "{label}: no verdict: plugin {} {e}",
                            plugin.description.name
                        );
                    }
                    return Ok(EXIT_GATE_FAILED);
                }
            };
            let outcome = v.outcome.to_string();
            if a.output == Output::Json {
                println!(
                    "{}",
                    json!({
                        "plugin": label, "outcome": outcome, "score": v.score, "reason": v.reason,
                        "measurements": v.measurements.iter().map(|m| json!({"name": m.name, "value": m.value, "unit": m.unit})).collect::<Vec<_>>(),
                        "fuel_used": v.fuel_used, "duration_us": elapsed.as_micros() as u64,
                    })
                );
            } else {
                println!("{label}: {outcome} (score {:.2})", v.score);
                println!("  {}", v.reason);
                for m in &v.measurements {
                    println!("  {} = {} {}", m.name, m.value, m.unit);
                }
                println!(
                    "  {} instructions (fuel), {:.2} ms",
                    v.fuel_used,
                    elapsed.as_secs_f64() * 1000.0
                );
            }
            Ok(if v.outcome.lets_through() {
                EXIT_OK
            } else {
                EXIT_GATE_FAILED
            })
        }
        PluginKind::Adapter => {
            let base = a.request.parent().unwrap_or(Path::new("."));
            let given = given_candidate(&request, "candidate", base)?;
            let needed = |call: &str| {
                given.clone().with_context(|| {
                    format!("a {call} needs a \"candidate\" (or \"candidate_file\")")
                })
            };
            let environment = field("environment").as_str().unwrap_or("dev").to_string();
            let call = match field("call").as_str().unwrap_or("current") {
                "apply" => AdapterCall::Apply {
                    environment,
                    params,
                    candidate: needed("apply")?,
                },
                "current" => AdapterCall::Current {
                    environment,
                    params,
                },
                "set-traffic" => AdapterCall::SetTraffic {
                    environment,
                    params,
                    canary: needed("set-traffic")?,
                    weight_percent: field("weight_percent").as_u64().unwrap_or(0).min(100) as u8,
                },
                "rollback" => AdapterCall::Rollback {
                    environment,
                    params,
                    restore: given,
                },
                other => bail!(
                    "unknown adapter call {other:?}; use apply, current, set-traffic or rollback"
                ),
            };
            match plugins.adapt_blocking(&plugin, call, limits) {
                Ok(Some(live)) => {
                    println!(
                        "{label}: live {} canary {} at {}% ({})",
                        live.active.as_deref().unwrap_or("-"),
                        live.canary.as_deref().unwrap_or("-"),
                        live.canary_weight_percent,
                        live.detail
                    );
                    Ok(EXIT_OK)
                }
                Ok(None) => {
                    println!("{label}: done");
                    Ok(EXIT_OK)
                }
                Err(e) => {
                    println!("{label}: failed: plugin {} {e}", plugin.description.name);
                    Ok(EXIT_ERROR)
                }
            }
        }
    }
}
