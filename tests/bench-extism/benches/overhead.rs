//! Per-call overhead of a trivial plugin call: Gatehouse beside Extism, in
//! one process, batches of each variant interleaved (their order rotating)
//! so drift on a shared machine falls on all of them alike.
//!
//! `OVERHEAD_BATCHES` and `OVERHEAD_CALLS` (per batch) override the
//! defaults, 20 and 2,000; one unrecorded batch of each warms up first.

use std::time::{Duration, Instant};

use bench_extism::ours::Ours;
use bench_extism::theirs::Theirs;
use bench_extism::{Summary, micros};

const NOOP_GATE_WASM: &[u8] = include_bytes!(env!("NOOP_GATE_WASM"));
const EXTISM_NOOP_WASM: &[u8] = include_bytes!(env!("EXTISM_NOOP_WASM"));
/// Gatehouse should cost at most this fraction of Extism per call.
const TARGET_RATIO: f64 = 1.0 / 3.0;

#[derive(Debug, Clone, Copy)]
enum Variant {
    Ours,
    ExtismFresh,
    ExtismWarm,
}

const VARIANTS: [Variant; 3] = [Variant::Ours, Variant::ExtismFresh, Variant::ExtismWarm];

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Ours => "gatehouse evaluate (fresh instance per call)",
            Variant::ExtismFresh => "extism, fresh Plugin per call (from compiled)",
            Variant::ExtismWarm => "extism, call into a warm Plugin",
        }
    }
}

fn main() {
    let batches = setting("OVERHEAD_BATCHES", 20);
    let calls = setting("OVERHEAD_CALLS", 2_000);

    let ours = Ours::new(NOOP_GATE_WASM);
    let mut theirs = Theirs::new(EXTISM_NOOP_WASM);
    let mut samples: [Vec<Duration>; 3] = Default::default();

    for variant in VARIANTS {
        run_batch(variant, calls, &ours, &mut theirs, &mut Vec::new());
    }
    for batch in 0..batches {
        for i in 0..VARIANTS.len() {
            let k = (batch + i) % VARIANTS.len();
            run_batch(VARIANTS[k], calls, &ours, &mut theirs, &mut samples[k]);
        }
    }

    println!(
        "per-call time, {batches} batches x {calls} calls per variant, after one warm-up batch"
    );
    println!("{:<48} {:>10} {:>10}", "variant", "median µs", "p90 µs");
    let mut summaries = [None; 3];
    for (k, variant) in VARIANTS.iter().enumerate() {
        let Some(s) = Summary::of(&mut samples[k]) else {
            println!("{:<48} no calls", variant.label());
            continue;
        };
        println!(
            "{:<48} {:>10.2} {:>10.2}",
            variant.label(),
            micros(s.median),
            micros(s.p90)
        );
        summaries[k] = Some(s);
    }
    if let [Some(ours), Some(fresh), Some(warm)] = summaries {
        for (name, peer) in [("fresh", fresh), ("warm", warm)] {
            let ratio = ours.median.as_secs_f64() / peer.median.as_secs_f64();
            let verdict = if ratio <= TARGET_RATIO {
                "meets"
            } else {
                "misses"
            };
            println!(
                "ours ÷ extism {name:<5} (medians): {ratio:.3}  ({verdict} the target ≤ {TARGET_RATIO:.3}); p90s: {:.3}",
                ours.p90.as_secs_f64() / peer.p90.as_secs_f64()
            );
        }
    }
}

/// `calls` timed calls of `variant`, each one's time pushed onto `out`.
fn run_batch(
    variant: Variant,
    calls: usize,
    ours: &Ours,
    theirs: &mut Theirs,
    out: &mut Vec<Duration>,
) {
    out.reserve(calls);
    for _ in 0..calls {
        let start = Instant::now();
        match variant {
            Variant::Ours => ours.call(),
            Variant::ExtismFresh => theirs.call_fresh(),
            Variant::ExtismWarm => theirs.call_warm(),
        }
        out.push(start.elapsed());
    }
}

/// A positive count from the environment, or `default` when unset.
fn setting(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => default,
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("{name}={text:?} is not a positive whole number; using {default}");
                default
            }
        },
        Err(e) => {
            eprintln!("{name} is unreadable ({e}); using {default}");
            default
        }
    }
}
