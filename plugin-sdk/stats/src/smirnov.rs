//! The one-sided Kolmogorov-Smirnov (Smirnov) survival function
//! P(D+_n >= x), which also gives the far tail of the two-sided statistic.
//!
//! Rules: same cases and thresholds as SciPy's `scipy.special.smirnov`
//! (van Mulbregt 2018), so the same formula is used for the same (n, x).
//! The main case is the Birnbaum-Tingey sum
//! x sum_{v=0}^{floor(n (1 - x))} C(n, v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v).
//! SciPy evaluates it in double-double arithmetic; here each term is
//! evaluated in log space in a form without large cancelling logarithms
//! (Stirling's error terms and `ln_1p` of small ratios), which is accurate
//! to about 1e-13 relative up to n = 1e6. The cost is up to n terms.

use super::gamma::stirlerr;

/// Below this exp() underflows (Cephes' MINLOG).
const MIN_LOG: f64 = -7.083_964_185_322_641e2;
/// Above this SciPy switches to an asymptotic formula.
const MAX_COMPUTE_N: u64 = 1_000_000;

/// floor(n x) and the exact remainder n x - floor(n x), from the exact
/// product n x = hi + lo.
fn split_nx(n: f64, x: f64) -> (f64, f64) {
    let hi = n * x;
    let lo = n.mul_add(x, -hi);
    let mut floor = hi.floor();
    let mut alpha = (hi - floor) + lo;
    if alpha < 0.0 {
        floor -= 1.0;
        alpha += 1.0;
    }
    if alpha >= 1.0 {
        floor += 1.0;
        alpha -= 1.0;
    }
    (floor, alpha)
}

/// ln(c / d) for 0 < c < d, accurate whether the ratio is small or near 1:
/// `rest` must be d - c, computed exactly or nearly so.
fn ln_ratio(c: f64, rest: f64, d: f64) -> f64 {
    if c < 0.5 * d {
        (c / d).ln()
    } else {
        (-rest / d).ln_1p()
    }
}

/// P(D+_n >= x), the Smirnov survival function for a sample of n.
pub(crate) fn smirnov_sf(n: u64, x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if n == 1 {
        return 1.0 - x;
    }
    let nf = n as f64;
    let (nx_floor, alpha) = split_nx(nf, x);
    // x <= 1/n: sf = 1 - x (1 + x)^(n - 1).
    if nx_floor == 0.0 || (nx_floor == 1.0 && alpha == 0.0) {
        return 1.0 - x * ((nf - 1.0) * x.ln_1p()).exp();
    }
    if -2.0 * nf * x * x < MIN_LOG {
        return 0.0;
    }
    // x >= 1 - 1/n: only the last path survives.
    if nx_floor >= nf - 1.0 {
        return (nf * (-x).ln_1p()).exp();
    }
    if n > MAX_COMPUTE_N {
        let log_p = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        return if log_p < -std::f64::consts::LN_2 {
            log_p.exp()
        } else {
            1.0 - (-log_p.exp_m1())
        };
    }

    // The last index of the sum, floor(n (1 - x)), less one when n x is an
    // integer (that term is 0).
    let last = nf - nx_floor - 1.0;
    let nx = nx_floor + alpha;
    let ln_x = x.ln();
    let shared = stirlerr(nf) + 0.5 * (nf / std::f64::consts::TAU).ln();
    // Scaled running sum: total = scaled * exp(scale).
    let first = nf * (-x).ln_1p() - ln_x;
    let (mut scale, mut scaled) = (first, 1.0_f64);
    let terms = last as u64 + 1;
    let mut v = 1.0;
    for remaining in (1..terms).rev() {
        // ln of C(n, v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v), with
        // C(n, v) = n^n / (v^v (n-v)^(n-v)) sqrt(n / (2 pi v (n-v)))
        //           * exp(stirlerr(n) - stirlerr(v) - stirlerr(n-v)).
        let w = nf - v;
        let above = (nx_floor + v) + alpha; // n (x + v/n)
        let below = (w - nx_floor) - alpha; // n (1 - x - v/n)
        let up = (nx / v).ln_1p(); // ln((v + n x) / v)
        let down = ln_ratio(below, nx, w); // ln((n - v - n x) / (n - v))
        let ln_above = ln_ratio(above, below, nf); // ln(x + v/n)
        let term =
            v * up + w * down - ln_above + shared - 0.5 * (v * w).ln() - stirlerr(v) - stirlerr(w);
        if term > scale {
            scaled = scaled * (scale - term).exp() + 1.0;
            scale = term;
        } else {
            let relative = (term - scale).exp();
            scaled += relative;
            // The same stopping rule as SciPy: the rest cannot matter.
            if 4.0 * remaining as f64 * relative < f64::EPSILON * scaled && remaining > 1 {
                break;
            }
        }
        v += 1.0;
    }
    let sf = x * scaled * scale.exp();
    sf.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Birnbaum-Tingey sum in plain floating point, fine for small n.
    fn direct(n: u64, x: f64) -> f64 {
        let nf = n as f64;
        let last = (nf * (1.0 - x)).floor() as u64;
        let mut total = 0.0;
        let mut binomial = 1.0;
        for v in 0..=last {
            let vf = v as f64;
            if v > 0 {
                binomial *= (nf - vf + 1.0) / vf;
            }
            if 1.0 - x - vf / nf <= 0.0 {
                break;
            }
            total += binomial * (x + vf / nf).powf(vf - 1.0) * (1.0 - x - vf / nf).powf(nf - vf);
        }
        x * total
    }

    #[test]
    fn log_space_sum_matches_the_direct_sum() {
        for n in [3, 7, 20, 60] {
            for x in [0.13, 0.3, 0.45, 0.6, 0.8] {
                let got = smirnov_sf(n, x);
                let want = direct(n, x);
                assert!(
                    (got / want - 1.0).abs() < 1e-12,
                    "n={n} x={x}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn edges_are_certain() {
        assert_eq!(smirnov_sf(10, 0.0), 1.0);
        assert_eq!(smirnov_sf(10, 1.0), 0.0);
        assert!((smirnov_sf(1, 0.25) - 0.75).abs() < 1e-16);
    }
}
