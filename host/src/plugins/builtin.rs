//! The plugins the daemon ships with, built from `plugins/` by the build
//! script and embedded in the binary; later pushes may replace them.

include!(concat!(env!("OUT_DIR"), "/plugin_paths.rs"));

/// (file name, bytes) of every embedded gate plugin.
pub fn embedded() -> [(&'static str, &'static [u8]); 5] {
    [
        ("cost-estimator.wasm", COST_ESTIMATOR_WASM),
        ("config-lint.wasm", CONFIG_LINT_WASM),
        ("golden-eval.wasm", GOLDEN_EVAL_WASM),
        ("drift.wasm", DRIFT_WASM),
        ("latency.wasm", LATENCY_WASM),
    ]
}
