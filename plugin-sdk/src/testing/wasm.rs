//! Judging a request with the built component, in the daemon's own sandbox
//! (fresh store, deadline, fuel, memory cap, no grants), from a native test:
//!
//! ```no_run
//! use gatehouse_plugin_sdk::testing::{gate_request, wasm};
//! use gatehouse_plugin_sdk::Outcome;
//!
//! let component = wasm::component(env!("CARGO_MANIFEST_DIR")).expect("built");
//! let run = wasm::evaluate(&component, &gate_request(r#"{"model": "m"}"#, "{}")).expect("ran");
//! assert_eq!(run.verdict.map(|v| v.outcome), Some(Outcome::Pass));
//! ```
//!
//! The component is what `cargo build --release --target wasm32-wasip2`
//! left; it runs through `gatehouse plugin test`, found as `$GATEHOUSE` or
//! `gatehouse` on the `PATH`, so the test exercises exactly what the daemon
//! will run.

use crate::{GateRequest, Measurement, Outcome, Verdict};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What the component answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The verdict, when the component gave one the host accepted.
    pub verdict: Option<Verdict>,
    /// Why there is none: timeout, trap, fuel, malformed verdict, an `Err`.
    pub error: Option<String>,
    /// Instructions the call used, as the daemon counts them.
    pub fuel_used: u64,
}

/// The crate's built component: `target/wasm32-wasip2/release/NAME.wasm`
/// under `crate_dir` (or `$CARGO_TARGET_DIR`). An error when it is missing
/// or older than a file under `src/`, saying how to build it.
pub fn component(crate_dir: impl AsRef<Path>) -> Result<PathBuf, String> {
    let crate_dir = crate_dir.as_ref();
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml"))
        .map_err(|e| format!("cannot read {}/Cargo.toml: {e}", crate_dir.display()))?;
    let name = package_name(&manifest)
        .ok_or_else(|| format!("{}/Cargo.toml has no package name", crate_dir.display()))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir.join("target"));
    let wasm = target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let build = "run `cargo build --release --target wasm32-wasip2` first";
    let built =
        modified(&wasm).ok_or_else(|| format!("{} is not built; {build}", wasm.display()))?;
    if newest_source(&crate_dir.join("src")).is_some_and(|src| src > built) {
        return Err(format!(
            "{} is older than its sources; {build}",
            wasm.display()
        ));
    }
    Ok(wasm)
}

/// Runs `request` through `component` in the daemon's sandbox.
pub fn evaluate(component: &Path, request: &GateRequest) -> Result<Run, String> {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-harness-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = dir.join("request.json");
    std::fs::write(&file, request.to_request_file()?)
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let cli = std::env::var_os("GATEHOUSE").unwrap_or_else(|| "gatehouse".into());
    let out = Command::new(&cli)
        .args(["plugin", "test"])
        .arg(component)
        .arg("--request")
        .arg(&file)
        .args(["--output", "json"])
        .output()
        .map_err(|e| {
            format!(
                "cannot run {:?} ({e}); install the gatehouse CLI or set GATEHOUSE to its path",
                cli
            )
        });
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            format!(
                "gatehouse plugin test gave no JSON answer ({}): {}{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    parse(&answer)
}

fn parse(answer: &serde_json::Value) -> Result<Run, String> {
    if let Some(error) = answer["error"].as_str() {
        return Ok(Run {
            verdict: None,
            error: Some(error.to_string()),
            fuel_used: 0,
        });
    }
    let outcome = match answer["outcome"].as_str() {
        Some("pass") => Outcome::Pass,
        Some("warn") => Outcome::Warn,
        Some("fail") => Outcome::Fail,
        Some("inconclusive") => Outcome::Inconclusive,
        other => return Err(format!("unexpected outcome {other:?} in {answer}")),
    };
    let measurements = answer["measurements"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| Measurement {
                    name: m["name"].as_str().unwrap_or_default().to_string(),
                    value: m["value"].as_f64().unwrap_or(f64::NAN),
                    unit: m["unit"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Run {
        verdict: Some(Verdict {
            outcome,
            score: answer["score"].as_f64().unwrap_or(0.0),
            measurements,
            reason: answer["reason"].as_str().unwrap_or_default().to_string(),
        }),
        error: None,
        fuel_used: answer["fuel_used"].as_u64().unwrap_or(0),
    })
}

/// `name = "..."` of the `[package]` table.
fn package_name(manifest: &str) -> Option<String> {
    let package = manifest.split("[package]").nth(1)?;
    package
        .lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == "name").then(|| value.trim().trim_matches('"').to_string())
        })
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_source(&path)
        } else {
            modified(&path)
        };
        newest = newest.max(time);
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_name_is_read_from_the_package_table() {
        let manifest = "[workspace]\n\n[package]\nname = \"max-tokens\"\nversion = \"0.1.0\"\n[lib]\nname = \"other\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("max-tokens"));
    }

    #[test]
    fn answers_of_plugin_test_become_runs() {
        let verdict = serde_json::json!({"plugin": "g 0.1.0", "outcome": "fail", "score": 0.25,
            "reason": "too dear", "measurements": [{"name": "cost", "value": 2.0, "unit": "usd"}],
            "fuel_used": 1234, "duration_us": 10});
        let run = parse(&verdict).expect("parses");
        let v = run.verdict.expect("a verdict");
        assert_eq!(
            (v.outcome, v.score, run.fuel_used),
            (Outcome::Fail, 0.25, 1234)
        );
        assert_eq!(v.measurements[0].name, "cost");
        let error = serde_json::json!({"plugin": "g 0.1.0", "error": "timed out after 5 ms"});
        let run = parse(&error).expect("parses");
        assert_eq!(run.error.as_deref(), Some("timed out after 5 ms"));
        assert!(run.verdict.is_none());
    }

    #[test]
    fn a_missing_component_says_how_to_build_it() {
        let err = component(env!("CARGO_MANIFEST_DIR")).unwrap_err();
        assert!(
            err.contains("cargo build --release --target wasm32-wasip2"),
            "{err}"
        );
    }
}
