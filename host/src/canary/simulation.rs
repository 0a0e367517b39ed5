//! Simulated canaries that check the judge's two promises: under continuous
//! monitoring it rarely rolls back a canary that is no worse, and it
//! catches a real regression sooner than a fixed-horizon test would.
//!
//! Latencies are log-normal (σ = 0.5 on the log scale, median 100 ms),
//! errors Bernoulli; every run is seeded, so results are the same on every
//! machine. Run with `--nocapture` to see the measured rates and ratios.

use super::testing::Rng;
use super::{Arm, Canary, CanaryConfig, Decision, Look, Observation};
use gatehouse_stats::{self as stats, Alternative};

const SIGMA: f64 = 0.5;
/// Samples per arm between looks.
const BATCH: usize = 20;

/// Feeds one canary batch by batch with an interim look after each, and
/// returns the samples per arm at the first roll-back, if any.
fn monitor(
    config: &CanaryConfig,
    rng: &mut Rng,
    horizon: usize,
    canary_median: f64,
    error_rate: f64,
) -> Option<usize> {
    let mut c = Canary::new(config.clone());
    for look in 1..=horizon / BATCH {
        for _ in 0..BATCH {
            for (arm, median) in [(Arm::Baseline, 100.0), (Arm::Canary, canary_median)] {
                let o = Observation {
                    error: rng.bernoulli(error_rate),
                    ..Observation::latency(arm, rng.lognormal(median, SIGMA))
                };
                c.observe(o).ok()?;
            }
        }
        if c.judge(Look::Interim).decision == Decision::RollBack {
            return Some(look * BATCH);
        }
    }
    None
}

/// A/A: 500 canaries identical to their baseline, each watched after every
/// 20 samples per arm up to 1,000 (50 looks), with α = 0.05.
///
/// Two anytime-valid tests can roll back here (error_rate and latency_mean,
/// both critical). Each two-sided mixture crosses 1/α with probability ≤ α
/// under H₀, about evenly on either side, and only the bad side rolls back,
/// so the false-rollback rate should sit below α, which is asserted (the
/// runs are seeded, so the figure is the same at every run; the printed
/// bound, α plus three binomial standard errors, says how far a valid test
/// could stray on other seeds). To show the
/// check has teeth, the same runs also count what a naive fixed-horizon
/// z-test (one-sided, level α) repeated at every look would have done: it
/// must exceed α, as repeated testing inflates false alarms.
#[test]
fn aa_canaries_under_continuous_monitoring_rarely_roll_back() {
    let alpha = 0.05;
    let config = CanaryConfig {
        alpha,
        ..CanaryConfig::default()
    };
    let runs = 500;
    let mut rng = Rng::seeded(2022);
    let false_rollbacks = (0..runs)
        .filter(|_| monitor(&config, &mut rng, 1000, 100.0, 0.02).is_some())
        .count();
    let rate = false_rollbacks as f64 / runs as f64;
    let margin = 3.0 * (alpha * (1.0 - alpha) / runs as f64).sqrt();

    let naive = (0..runs)
        .filter(|_| naive_repeated_z_rejects(&mut rng, 1000, alpha))
        .count() as f64
        / runs as f64;
    println!(
        "A/A false-rollback rate: {rate:.4} over {runs} canaries (alpha {alpha}, bound {:.4}); \
         naive repeated z-test: {naive:.4}",
        alpha + margin
    );
    assert!(
        rate < alpha,
        "false-rollback rate {rate} not below alpha {alpha} (noise bound {})",
        alpha + margin
    );
    assert!(
        naive > alpha,
        "naive repeated testing should inflate false alarms: {naive}"
    );
}

/// A one-sided z-test on mean latency at level α, applied after every batch.
fn naive_repeated_z_rejects(rng: &mut Rng, horizon: usize, alpha: f64) -> bool {
    let mut window = super::Window::new();
    for _ in 0..horizon / BATCH {
        for _ in 0..BATCH {
            for arm in [Arm::Baseline, Arm::Canary] {
                let _ = window.push(Observation::latency(arm, rng.lognormal(100.0, SIGMA)));
            }
        }
        let (b, c) = (
            window.baseline().latency_moments(),
            window.canary().latency_moments(),
        );
        let se = (b.variance() / b.n as f64 + c.variance() / c.n as f64).sqrt();
        if stats::normal_sf((c.mean - b.mean) / se) <= alpha {
            return true;
        }
    }
    false
}

/// Power: the canary's latencies are 20% higher (median and mean ×1.2).
///
/// The comparison, at the same α (0.01, one-sided) and the same power
/// (95%): a fixed-horizon design must choose n before it starts. Given the
/// true effect — which favours it, since a real design would have to size
/// for the smallest regression that matters — Noether's formula for the
/// Mann-Whitney U test gives n per arm = (z₀.₉₉ + z₀.₉₅)² / (6 (p′ − ½)²),
/// with p′ = P(canary > baseline) = Φ(ln 1.2 / (σ√2)). The simulation
/// checks that the MWU at that n does reach about 95% power, that the
/// sequential judge (interim looks every 20 samples per arm, horizon 2,000)
/// detects in at least 95% of runs, and that its median stopping size is
/// below the fixed n. It also prints the fixed n sized for the 5% effect
/// floor, the honest alternative when the effect is unknown.
#[test]
fn sequential_judge_catches_a_20_percent_regression_before_a_fixed_horizon() {
    let config = CanaryConfig::default();
    let (z_alpha, z_power) = (2.326_348, 1.644_854);
    let noether = |ratio: f64| {
        let p = stats::normal_cdf(ratio.ln() / (SIGMA * std::f64::consts::SQRT_2));
        ((z_alpha + z_power) * (z_alpha + z_power) / (6.0 * (p - 0.5) * (p - 0.5))).ceil() as usize
    };
    let fixed_n = noether(1.2);
    let fixed_n_for_floor = noether(1.05);

    let runs = 200;
    let mut rng = Rng::seeded(2017);
    let mut stops: Vec<usize> = (0..runs)
        .filter_map(|_| monitor(&config, &mut rng, 2000, 120.0, 0.0))
        .collect();
    stops.sort_unstable();
    let seq_power = stops.len() as f64 / runs as f64;
    let median = stops.get(stops.len() / 2).copied().unwrap_or(usize::MAX);

    let fixed_detected = (0..runs)
        .filter(|_| {
            let draw = |rng: &mut Rng, m: f64| {
                (0..fixed_n)
                    .map(|_| rng.lognormal(m, SIGMA))
                    .collect::<Vec<_>>()
            };
            let (b, c) = (draw(&mut rng, 100.0), draw(&mut rng, 120.0));
            stats::mann_whitney_u(&c, &b, Alternative::Greater)
                .is_ok_and(|t| t.p_value <= config.alpha)
        })
        .count();
    let fixed_power = fixed_detected as f64 / runs as f64;
    println!(
        "20% regression, alpha {}: sequential power {seq_power:.3}, median stop {median} per arm; \
         fixed-horizon MWU n {fixed_n} per arm (power {fixed_power:.3}); \
         ratio {:.2}; fixed n sized for the 5% floor {fixed_n_for_floor} (ratio {:.3})",
        config.alpha,
        median as f64 / fixed_n as f64,
        median as f64 / fixed_n_for_floor as f64,
    );
    assert!(seq_power >= 0.95, "sequential power {seq_power}");
    assert!(
        fixed_power >= 0.90,
        "fixed-horizon power {fixed_power} at n {fixed_n}"
    );
    assert!(
        median < fixed_n,
        "median stop {median} not below fixed n {fixed_n}"
    );
}
