//! Prints figures for the standard gates, each beside the same computation
//! done natively in the host, as a ratio:
//!
//! - golden-eval scoring 10,000 attached cases (exact match, no incumbent):
//!   inside its wasm sandbox (fresh store, attachments copied in, JSON lines
//!   parsed, scored, verdict checked) and natively (the same crate, called
//!   as a library).
//!
//! Run: `cargo bench -p gatehouse --bench standard_gates`. Medians over the
//! iterations below; the machine is shared, so compare the ratio.

use gatehouse::digest::Digest;
use gatehouse::plugins::builtin::GOLDEN_EVAL_WASM;
use gatehouse::plugins::manifest::Manifest;
use gatehouse::plugins::sandbox::Limits;
use gatehouse::plugins::{
    Attachments, CALL_MEMORY_LIMIT, CandidateView, DEFAULT_FUEL, GateInput, Plugins,
};
use gatehouse_plugin_sdk::attachments::Owner;
use gatehouse_plugin_sdk::testing;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CASES: usize = 10_000;
const RUNS: usize = 30;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `CASES` short-answer cases and outputs, one in ten answered wrong.
fn golden_set() -> (Vec<u8>, Vec<u8>) {
    let labels = ["billing", "outage", "account", "feature-request", "other"];
    let (mut cases, mut outputs) = (String::new(), String::new());
    for i in 0..CASES {
        let label = labels[i % labels.len()];
        let answer = if i % 10 == 0 { "other" } else { label };
        cases.push_str(&format!(
            "{{\"id\":\"c{i}\",\"input\":\"ticket {i}\",\"expected\":\"{label}\"}}\n"
        ));
        outputs.push_str(&format!("{{\"id\":\"c{i}\",\"output\":\"{answer}\"}}\n"));
    }
    (cases.into_bytes(), outputs.into_bytes())
}

const PARAMS: &str = r#"{"dataset": "attachment:golden.jsonl", "threshold": 0.8}"#;

fn golden_eval() {
    let (cases, outputs) = golden_set();
    let candidate = br#"{"model":"m"}"#.to_vec();

    let plugins = Plugins::new().expect("engine");
    let plugin = plugins
        .install("golden-eval.wasm", GOLDEN_EVAL_WASM, Manifest::default())
        .expect("install golden-eval");
    let input = GateInput {
        candidate: CandidateView {
            digest: Digest::of(&candidate),
            bytes: Arc::new(candidate.clone()),
            metadata: Vec::new(),
        },
        incumbent: None,
        stage: "staging".into(),
        params: serde_json::from_str(PARAMS).expect("params"),
        attachments: Arc::new(Attachments {
            candidate: [
                ("golden.jsonl".to_string(), Arc::new(cases.clone())),
                ("outputs.jsonl".to_string(), Arc::new(outputs.clone())),
            ]
            .into(),
            incumbent: Default::default(),
        }),
    };
    let limits = Limits {
        timeout: Duration::from_secs(30),
        fuel: DEFAULT_FUEL,
        memory: CALL_MEMORY_LIMIT,
    };
    let mut wasm_ms = Vec::new();
    let mut fuel = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let v = plugins.evaluate(&plugin, &input, limits).expect("verdict");
        wasm_ms.push(t.elapsed().as_secs_f64() * 1e3);
        fuel = v.fuel_used;
    }

    testing::attach(Owner::Candidate, "golden.jsonl", cases);
    testing::attach(Owner::Candidate, "outputs.jsonl", outputs);
    let request = testing::gate_request("{\"model\":\"m\"}", PARAMS);
    let mut native_ms = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let v = golden_eval::judge(&request).expect("verdict");
        native_ms.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(v);
    }
    let (wasm, native) = (median(&mut wasm_ms), median(&mut native_ms));
    println!(
        "golden-eval, {CASES} attached cases: wasm {wasm:.2} ms ({fuel} fuel), native {native:.2} ms, ratio {:.2} ({RUNS} runs each)",
        wasm / native
    );
}

fn main() {
    golden_eval();
}
