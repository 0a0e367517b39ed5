//! A gate built against `gatehouse:plugin@0.1.0` with wit-bindgen alone, as
//! plugins were before `check-params`: the daemon must still load and run
//! it. Params: `{"max_bytes": N}` fails a candidate longer than N bytes;
//! anything else is an `Err` from `evaluate`, the only place a 0.1.0 gate
//! can refuse its parameters.
//!
//! Only a component carries the exports: their names are not valid symbol
//! names in a native shared library, so the crate is empty there.

#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    world: "gate",
    path: "../../../plugin-sdk/wit-0.1.0",
});

use exports::gatehouse::plugin::gate_api::Guest;
use gatehouse::plugin::types::{Description, GateRequest, Outcome, PluginKind, Verdict};

struct LegacyGate;

/// Reads `max_bytes` from `{"max_bytes": N}` without a JSON library.
fn max_bytes(params: &str) -> Result<Option<usize>, String> {
    let body = params.trim();
    if body.is_empty() || body == "{}" {
        return Ok(None);
    }
    let number = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .and_then(|b| b.trim().strip_prefix("\"max_bytes\""))
        .and_then(|b| b.trim().strip_prefix(':'))
        .map(str::trim);
    match number.map(str::parse::<usize>) {
        Some(Ok(n)) => Ok(Some(n)),
        _ => Err(format!(
            "legacy-gate takes only {{\"max_bytes\": N}}, not {body}"
        )),
    }
}

impl Guest for LegacyGate {
    fn describe() -> Description {
        Description {
            name: "legacy-gate".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Gate,
            summary: "Fails a candidate longer than max_bytes (plugin contract 0.1.0)".into(),
            params_schema: r#"{"type":"object"}"#.into(),
            capabilities: Vec::new(),
        }
    }

    fn evaluate(request: GateRequest) -> Result<Verdict, String> {
        let len = request.candidate.bytes.len();
        let (outcome, reason) = match max_bytes(&request.params)? {
            Some(max) if len > max => (Outcome::Fail, format!("{len} bytes, more than {max}")),
            Some(max) => (Outcome::Pass, format!("{len} bytes, at most {max}")),
            None => (Outcome::Pass, format!("{len} bytes, no limit set")),
        };
        Ok(Verdict {
            outcome,
            score: if outcome == Outcome::Pass { 1.0 } else { 0.0 },
            measurements: Vec::new(),
            reason,
        })
    }
}

export!(LegacyGate);
