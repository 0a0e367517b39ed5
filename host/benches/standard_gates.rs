//! Prints figures for the standard gates, each beside the same computation
//! done natively in the host, as a ratio:
//!
//! - golden-eval scoring 10,000 attached cases (exact match, no incumbent):
//!   inside its wasm sandbox (fresh store, attachments copied in, JSON lines
//!   parsed, scored, verdict checked) and natively (the same crate, called
//!   as a library);
//! - drift comparing 2 × 100,000 samples of one numeric feature (PSI and
//!   two-sample KS), attached as JSON arrays, likewise in wasm and natively.
//!
//! Run: `cargo bench -p gatehouse --bench standard_gates`. Medians over the
//! iterations below; the machine is shared, so compare the ratio.

use gatehouse::digest::Digest;
use gatehouse::plugins::builtin::{DRIFT_WASM, GOLDEN_EVAL_WASM};
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
const SAMPLES: usize = 100_000;
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
    testing::attach(Owner::Candidate, "golden.jsonl", cases);
    testing::attach(Owner::Candidate, "outputs.jsonl", outputs);
    let request = testing::gate_request("{\"model\":\"m\"}", PARAMS);
    side_by_side(
        &format!("golden-eval, {CASES} attached cases"),
        &plugins,
        &plugin,
        &input,
        || testing::evaluate::<golden_eval::GoldenEval>(request.clone()).expect("verdict"),
    );
}

/// Runs `plugin` on `input` and `native` on the same request `RUNS` times
/// each; prints both medians and their ratio.
fn side_by_side(
    what: &str,
    plugins: &Plugins,
    plugin: &gatehouse::plugins::Plugin,
    input: &GateInput,
    native: impl Fn() -> gatehouse_plugin_sdk::Verdict,
) {
    let limits = Limits {
        timeout: Duration::from_secs(30),
        fuel: DEFAULT_FUEL,
        memory: CALL_MEMORY_LIMIT,
    };
    let (mut wasm_ms, mut native_ms) = (Vec::new(), Vec::new());
    let mut fuel = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let v = plugins
            .evaluate_blocking(plugin, input, limits)
            .expect("verdict");
        wasm_ms.push(t.elapsed().as_secs_f64() * 1e3);
        fuel = v.fuel_used;
        let t = Instant::now();
        std::hint::black_box(native());
        native_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (wasm, native) = (median(&mut wasm_ms), median(&mut native_ms));
    println!(
        "{what}: wasm {wasm:.2} ms ({fuel} fuel), native {native:.2} ms, ratio {:.2} ({RUNS} runs each, interleaved)",
        wasm / native
    );
}

/// `SAMPLES` numbers as one JSON array: a skewed, lumpy distribution (so
/// both tests do real work), the candidate's shifted by `shift`.
fn samples(seed: u64, shift: f64) -> Vec<u8> {
    let mut x = seed;
    let mut out = String::with_capacity(SAMPLES * 8);
    out.push('[');
    for i in 0..SAMPLES {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        let v = -(1.0 - u).ln() * 40.0 + shift;
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{v:.3}"));
    }
    out.push(']');
    out.into_bytes()
}

const DRIFT_PARAMS: &str = r#"{"candidate": "attachment:candidate.json", "reference": "attachment:reference.json", "features": {"latency": {"kind": "numeric"}}}"#;

fn drift() {
    let (candidate_samples, reference_samples) = (samples(1, 2.0), samples(2, 0.0));
    let candidate = br#"{"model":"m"}"#.to_vec();
    let plugins = Plugins::new().expect("engine");
    let plugin = plugins
        .install("drift.wasm", DRIFT_WASM, Manifest::default())
        .expect("install drift");
    let input = GateInput {
        candidate: CandidateView {
            digest: Digest::of(&candidate),
            bytes: Arc::new(candidate),
            metadata: Vec::new(),
        },
        incumbent: None,
        stage: "staging".into(),
        params: serde_json::from_str(DRIFT_PARAMS).expect("params"),
        attachments: Arc::new(Attachments {
            candidate: [
                (
                    "candidate.json".to_string(),
                    Arc::new(candidate_samples.clone()),
                ),
                (
                    "reference.json".to_string(),
                    Arc::new(reference_samples.clone()),
                ),
            ]
            .into(),
            incumbent: Default::default(),
        }),
    };
    testing::attach(Owner::Candidate, "candidate.json", candidate_samples);
    testing::attach(Owner::Candidate, "reference.json", reference_samples);
    let request = testing::gate_request("{\"model\":\"m\"}", DRIFT_PARAMS);
    side_by_side(
        &format!("drift, 2 x {SAMPLES} numeric samples"),
        &plugins,
        &plugin,
        &input,
        || testing::evaluate::<drift::Drift>(request.clone()).expect("verdict"),
    );
}

fn main() {
    golden_eval();
    drift();
}
