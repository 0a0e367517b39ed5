//! The distribution of the two-sided one-sample Kolmogorov-Smirnov
//! statistic D_n (`scipy.stats.kstwo`), which SciPy's `ks_2samp` uses with
//! n = round(m n / (m + n)) for its asymptotic two-sided p-value.
//!
//! Rules: the same algorithm for the same (n, x) as SciPy's `_kolmogn`
//! (Simard and L'Ecuyer 2011): closed forms near the ends of the support,
//! the Durbin matrix (Marsaglia, Tsang and Wang 2003) and the Pomeranz
//! recursion for small n or small x, twice the Smirnov tail where that is
//! exact to rounding, and the Pelz-Good expansion elsewhere. Matching the
//! choice matters because the Pelz-Good branch is an approximation: a more
//! exact answer would differ from SciPy's in the 4th digit there.

use super::smirnov::smirnov_sf;
use std::f64::consts::PI;

/// Rescaling step for the Durbin and Pomeranz recursions, which would
/// otherwise overflow or underflow a double.
const SCALE_EXP: i32 = 128;

/// x * 2^e without intermediate overflow.
fn ldexp(mut x: f64, mut e: i32) -> f64 {
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e)
}

/// P(D_n > x) (`scipy.stats.kstwo.sf(x, n)`), for n >= 1.
pub(crate) fn kstwo_sf(x: f64, n: u64) -> f64 {
    let nf = n as f64;
    if x.is_nan() {
        return f64::NAN;
    }
    // Outside the support (1/(2n), 1) SciPy answers without computing.
    if x <= 0.5 / nf {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    kolmogn_sf(n, x)
}

/// SciPy's `_kolmogn(n, x, cdf=False)`.
fn kolmogn_sf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben-Gambino: 1/(2n) <= x <= 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            let mut product = 1.0;
            for i in 1..=n {
                product *= i as f64 * (1.0 / nf) * (2.0 * t - 1.0);
            }
            product
        } else {
            (log_factorial_over_power(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if t >= nf - 1.0 {
        return (2.0 * (1.0 - x).powf(nf)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let nx_squared = t * x;
    if n <= 140 {
        if nx_squared <= 0.754693 {
            return (1.0 - durbin_cdf(n, x)).clamp(0.0, 1.0);
        }
        if nx_squared <= 4.0 {
            return (1.0 - pomeranz_cdf(n, x)).clamp(0.0, 1.0);
        }
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    if nx_squared >= 370.0 {
        return 0.0;
    }
    if nx_squared >= 2.2 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        durbin_cdf(n, x)
    } else {
        pelz_good_cdf(n, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

/// ln(n! / n^n) by Stirling's series (SciPy's `_log_nfactorial_div_n_pow_n`).
fn log_factorial_over_power(n: f64) -> f64 {
    // Stirling's series B(2k) / (2k (2k - 1)), highest power first.
    const COEFFS: [f64; 8] = [
        -3617.0 / 122_400.0,
        1.0 / 156.0,
        -691.0 / 360_360.0,
        1.0 / 1188.0,
        -1.0 / 1680.0,
        1.0 / 1260.0,
        -1.0 / 360.0,
        1.0 / 12.0,
    ];
    let rn = 1.0 / n;
    let mut poly = 0.0;
    for c in COEFFS {
        poly = poly * (rn / n) + c;
    }
    n.ln() / 2.0 - n + (2.0 * PI).ln() / 2.0 + rn * poly
}

/// Square matrices stored row by row.
struct Matrix {
    size: usize,
    cells: Vec<f64>,
}

impl Matrix {
    fn identity(size: usize) -> Self {
        let mut cells = vec![0.0; size * size];
        for i in 0..size {
            cells[i * size + i] = 1.0;
        }
        Self { size, cells }
    }

    fn at(&self, row: usize, column: usize) -> f64 {
        self.cells[row * self.size + column]
    }

    fn times(&self, other: &Self) -> Self {
        let size = self.size;
        let mut cells = vec![0.0; size * size];
        for i in 0..size {
            for k in 0..size {
                let a = self.cells[i * size + k];
                if a == 0.0 {
                    continue;
                }
                let row = &other.cells[k * size..(k + 1) * size];
                for (out, b) in cells[i * size..(i + 1) * size].iter_mut().zip(row) {
                    *out += a * b;
                }
            }
        }
        Self { size, cells }
    }
}

/// P(D_n <= d) by the Durbin matrix: the (k, k) entry of H^n times n!/n^n.
/// H is (2k - 1) square with k = ceil(n d), so this is O(k^3 log n).
fn durbin_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let nd = nf * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powi(j as i32)).collect();
    let mut w = vec![0.0; m];
    let mut factorial_inv = 1.0;
    for j in 1..=m {
        w[j - 1] = factorial_inv;
        factorial_inv /= j as f64;
        v[j - 1] *= factorial_inv;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tt) * factorial_inv;
    let mut hm = Matrix {
        size: m,
        cells: vec![0.0; m * m],
    };
    for i in 1..m {
        for (row, value) in (i - 1..m).zip(w.iter()) {
            hm.cells[row * m + i] = *value;
        }
    }
    for (row, value) in v.iter().enumerate() {
        hm.cells[row * m] = *value;
    }
    for (column, value) in v.iter().rev().enumerate() {
        hm.cells[(m - 1) * m + column] = *value;
    }

    let big = 2f64.powi(SCALE_EXP);
    let small = 2f64.powi(-SCALE_EXP);
    let mut power = Matrix::identity(m);
    let (mut exponent, mut h_exponent) = (0_i32, 0_i32);
    let mut remaining = n;
    while remaining > 0 {
        if remaining % 2 == 1 {
            power = power.times(&hm);
            exponent += h_exponent;
        }
        hm = hm.times(&hm);
        h_exponent *= 2;
        if hm.at(k - 1, k - 1).abs() > big {
            for cell in &mut hm.cells {
                *cell /= big;
            }
            h_exponent += SCALE_EXP;
        }
        remaining /= 2;
    }
    let mut p = power.at(k - 1, k - 1);
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < small {
            p *= big;
            exponent -= SCALE_EXP;
        }
    }
    if exponent != 0 {
        p = ldexp(p, exponent);
    }
    p.clamp(0.0, 1.0)
}

/// Row i's column window in the Pomeranz recursion (SciPy's
/// `_pomeranz_compute_j1j2`).
fn pomeranz_window(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let half = (i + 1) / 2;
        if (i + 1) % 2 == 0 {
            if half == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (half - 1 - ll - roundf - 1, half + ll - 1 + ceilf - 1)
            }
        } else {
            (half - 1 - ll - 1, half + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// P(D_n <= x) by the Pomeranz (1974) recursion, for n <= 140.
fn pomeranz_cdf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let ni = n as i64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let powers = (2 * (ll + 1)) as usize;
    // (g/n)^m / m!, (2g/n)^m / m!, ((1 - 2g)/n)^m / m!
    let mut g_pow = vec![1.0; powers];
    let mut two_g_pow = vec![1.0; powers];
    let mut rest_pow = vec![1.0; powers];
    let (g_n, two_g_n, rest_n) = (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..powers {
        g_pow[m] = g_pow[m - 1] * g_n / m as f64;
        two_g_pow[m] = two_g_pow[m - 1] * two_g_n / m as f64;
        rest_pow[m] = rest_pow[m - 1] * rest_n / m as f64;
    }
    let big = 2f64.powi(SCALE_EXP);
    let small = 2f64.powi(-SCALE_EXP);
    let mut exponent = 0_i32;
    let mut v0 = vec![0.0; powers];
    let mut v1 = vec![0.0; powers];
    v1[0] = 1.0;
    let (mut v0_start, mut v1_start) = (0_i64, 0_i64);
    let (mut j1, _) = pomeranz_window(0, ni, ll, ceilf, roundf);
    for i in 1..(2 * ni + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0_start, &mut v1_start);
        v1.fill(0.0);
        let (next_j1, j2) = pomeranz_window(i, ni, ll, ceilf, roundf);
        j1 = next_j1;
        let pows = if i == 1 || i == 2 * ni + 1 {
            &g_pow
        } else if i % 2 == 1 {
            &two_g_pow
        } else {
            &rest_pow
        };
        let len = j2 - k1 + 1;
        if len > 0 {
            let from = (k1 - v0_start).max(0) as usize;
            let to = ((k1 - v0_start + len).max(0) as usize).min(v0.len());
            let a = &v0[from.min(to)..to];
            let b = &pows[..(len as usize).min(pows.len())];
            let conv_start = (j1 - k1).max(0) as usize;
            let conv_len = (j2 - j1 + 1).max(0) as usize;
            for (slot, out) in v1.iter_mut().enumerate().take(conv_len) {
                let index = conv_start + slot;
                // Full convolution: sum_i a[i] b[index - i].
                let lo = index.saturating_sub(b.len().saturating_sub(1));
                let hi = index.min(a.len().saturating_sub(1));
                let mut sum = 0.0;
                if !a.is_empty() && lo <= hi {
                    for ai in lo..=hi {
                        sum += a[ai] * b[index - ai];
                    }
                }
                *out = sum;
            }
            let max = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if max > 0.0 && max < small {
                for cell in &mut v1 {
                    *cell *= big;
                }
                exponent -= SCALE_EXP;
            }
            v1_start = v0_start + j1 - k1;
        }
    }
    let mut answer = v1
        .get((ni - v1_start).max(0) as usize)
        .copied()
        .unwrap_or(0.0);
    for m in 1..=n {
        if answer.abs() > big {
            answer *= small;
            exponent += SCALE_EXP;
        }
        answer *= m as f64;
    }
    if exponent != 0 {
        answer = ldexp(answer, exponent);
    }
    answer.clamp(0.0, 1.0)
}

/// The Pelz-Good (1976) asymptotic expansion of P(D_n <= x) to order
/// n^(-3/2), in its form for small z = x sqrt(n).
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let pi2 = PI.powi(2);
    let pi4 = PI.powi(4);
    let pi6 = PI.powi(6);
    let sqrt_2pi = (2.0 * PI).sqrt();
    let z = nf.sqrt() * x;
    let (z2, z3, z4, z6) = (z.powi(2), z.powi(3), z.powi(4), z.powi(6));
    let q_log = -pi2 / 8.0 / z2;
    if q_log < -708.0 {
        return 0.0;
    }
    let q = q_log.exp();
    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut terms = [0.0_f64; 4];
    let max_k = (16.0 * z / PI).ceil() as i64;
    for k in (1..=max_k).rev() {
        let m = (2 * k - 1) as f64;
        let (m2, m4, m6) = (m.powi(2), m.powi(4), m.powi(6));
        let q_power = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (term, c) in terms.iter_mut().zip(coeffs) {
            *term = *term * q_power + c;
        }
    }
    let divisors = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (term, d) in terms.iter_mut().zip(divisors) {
        *term = *term * q * sqrt_2pi / d;
    }
    let q = (-pi2 / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let mut k2_extra = 0.0;
    let mut k3_extra = 0.0;
    for k in (1..=max_k).rev() {
        let kf = k as f64;
        let k_squared = kf * kf;
        let q_power = q.powf(k_squared);
        let k_pi = PI * kf;
        k2_extra += k_squared * q_power;
        k3_extra += (sqrt3z + k_pi) * (sqrt3z - k_pi) * k_squared * q_power;
    }
    terms[2] += k2_extra * (pi2 * sqrt_2pi / (-36.0 * z3));
    terms[3] += k3_extra * (pi2 * sqrt_2pi / (216.0 * z6));
    let mut sum = 0.0;
    for (i, term) in terms.iter().enumerate() {
        sum += term / nf.powf(i as f64 / 2.0);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survival_is_one_below_the_support_and_zero_above() {
        assert_eq!(kstwo_sf(0.0, 10), 1.0);
        assert_eq!(kstwo_sf(0.05, 10), 1.0);
        assert_eq!(kstwo_sf(1.0, 10), 0.0);
    }

    #[test]
    fn durbin_and_pomeranz_agree_where_both_apply() {
        for n in [5, 20, 80, 140] {
            for nx2 in [0.3, 0.6, 1.0, 2.0] {
                let x = (nx2 / n as f64).sqrt();
                if n as f64 * x <= 1.0 {
                    continue;
                }
                let d = durbin_cdf(n, x);
                let p = pomeranz_cdf(n, x);
                assert!((d - p).abs() < 1e-12, "n={n} x={x}: {d} vs {p}");
            }
        }
    }

    #[test]
    fn one_sample_of_one_has_a_uniform_statistic() {
        // D_1 = max(U, 1 - U) is uniform on (1/2, 1): P(D_1 > x) = 2 (1 - x).
        for x in [0.6, 0.75, 0.9] {
            assert!((kstwo_sf(x, 1) - 2.0 * (1.0 - x)).abs() < 1e-15);
        }
    }
}
