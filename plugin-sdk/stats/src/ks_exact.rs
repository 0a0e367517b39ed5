//! Exact null distribution of the two-sample Kolmogorov-Smirnov statistic,
//! by counting lattice paths (Hodges 1958).
//!
//! Rules: a pooled, sorted sample of sizes m and n is a monotone path from
//! (0, 0) to (m, n); under the null hypothesis every path is equally likely,
//! and the statistic is at least h / lcm(m, n) exactly when the path touches
//! a diagonal band's edge. Every routine works with probabilities rather
//! than path counts (which overflow a double beyond m + n of about 1000).
//! The two-sided routines are SciPy's own, step for step, including when
//! SciPy gives up and falls back to the asymptotic distribution; the
//! one-sided routine for m != n is a more accurate recursion than SciPy's
//! (relative error ~1e-15 against SciPy's ~1e-11) with the same fallback
//! rule.

/// The exact p-value, or `None` where SciPy's exact computation fails and
/// it falls back to the asymptotic distribution.
pub(crate) fn two_sided(m: u64, n: u64, g: u64, h: u64) -> Option<f64> {
    let p = if m == n {
        prob_outside_square(m, h)
    } else {
        prob_outside_band(m, n, g, h)
    };
    (0.0..=1.0).contains(&p).then_some(p)
}

/// One-sided exact p-value P(D+ >= h / lcm(m, n)), or `None` where SciPy's
/// computation overflows and it falls back to the asymptotic formula.
pub(crate) fn one_sided(m: u64, n: u64, g: u64, h: u64) -> Option<f64> {
    if m == n {
        // binom(2n, n - h) / binom(2n, n) as a product of h ratios.
        let mut p = 1.0;
        for j in 0..h {
            p *= (m as f64 - j as f64) / (m as f64 + j as f64 + 1.0);
        }
        return Some(p);
    }
    // SciPy counts paths in doubles and gives up when binom(m + n, n)
    // overflows; the answer does not depend on how the count is done, only
    // on whether SciPy could do it.
    if ln_binomial(m + n, m.min(n)) > f64::MAX.ln() {
        return None;
    }
    Some(prob_touching_line(m, n, g, h))
}

/// ln C(total, k), by summing logarithms of ratios: exact enough to decide
/// overflow, which is all it is used for.
fn ln_binomial(total: u64, k: u64) -> f64 {
    (0..k)
        .map(|i| ((total - i) as f64 / (i + 1) as f64).ln())
        .sum()
}

/// P(D >= h / n) for two samples of size n: SciPy's
/// `_compute_prob_outside_square`, an alternating sum evaluated
/// Horner-style, P = 2 A0 (1 - A1 (1 - A2 (1 - ...))).
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as i64, h as i64);
    let mut p = 0.0;
    let mut k = (n as f64 / h as f64).floor() as i64;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// P(D >= h / lcm(m, n)) for m != n: SciPy's
/// `_compute_outer_prob_inside_method` (Viehmann 2021), which carries one
/// column of "probability that the path has already left the band" and so
/// computes the p-value itself rather than 1 minus the probability of
/// staying inside.
fn prob_outside_band(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len = (2 * maxj + 2).min(n + 1).max(1) as usize;
    let mut column = vec![1.0_f64; len];
    for cell in column.iter_mut().take(maxj.max(0) as usize) {
        *cell = 0.0;
    }
    for i in 1..=m {
        let last_minj = minj;
        let last_len = curlen;
        minj = (((ng * i - h) as f64 / mg as f64).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = (((ng * i + h) as f64 / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        // The cell below the band's lower edge has left it already (1),
        // except on the bottom row, which the path enters from (0, 0).
        let mut below = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            // Cells past the previous column's window are outside the band.
            let left = column
                .get((jj + minj - last_minj) as usize)
                .copied()
                .unwrap_or(1.0);
            below = (left * i as f64 + below * j as f64) / (i + j) as f64;
            if let Some(cell) = column.get_mut(jj as usize) {
                *cell = below;
            }
        }
        curlen = maxj - minj;
        if last_len > curlen {
            let from = curlen as usize;
            let to = ((curlen + (last_len - curlen)) as usize).min(column.len());
            for cell in column.iter_mut().take(to).skip(from) {
                *cell = 1.0;
            }
        }
    }
    column
        .get((maxj - minj - 1) as usize)
        .copied()
        .unwrap_or(1.0)
}

/// P(the path touches n x - m y >= h g) for m != n: the same column
/// recursion as [`prob_outside_band`] with a single edge. Every step is a
/// convex combination of values in [0, 1], so the result keeps full relative
/// accuracy even for p-values far below machine epsilon. O(m n), which
/// SciPy's overflow limit keeps below about 1.5e6 cells.
fn prob_touching_line(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, threshold) = (m as i64, n as i64, (h * g) as i64);
    // Column x = 0 never touches (threshold > 0): nothing has crossed yet.
    let mut column = vec![0.0_f64; (n + 1) as usize];
    for i in 1..=m {
        // Rows j <= (n i - threshold) / m lie on or past the line.
        let reach = n * i - threshold;
        let first_open = if reach < 0 { 0 } else { reach / m + 1 };
        let touching = first_open.min(n + 1) as usize;
        column[..touching].fill(1.0);
        // Row 0 is entered only from the left, so an open row 0 keeps its
        // value; every other open cell mixes its left and lower neighbours.
        for j in first_open.max(1)..=n {
            let j_at = j as usize;
            column[j_at] = (column[j_at] * i as f64 + column[j_at - 1] * j as f64) / (i + j) as f64;
        }
    }
    column[n as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(D >= d) by enumerating all C(m + n, n) paths.
    fn brute_force(m: u64, n: u64, h: u64, two_sided: bool) -> f64 {
        let total = m + n;
        let g = gcd(m, n);
        let threshold = (h * g) as i64;
        let (mut hits, mut all) = (0u64, 0u64);
        for mask in 0u64..(1 << total) {
            if mask.count_ones() as u64 != n {
                continue;
            }
            all += 1;
            let (mut x, mut y) = (0i64, 0i64);
            let mut touched = false;
            for bit in 0..total {
                if mask >> bit & 1 == 1 {
                    y += 1
                } else {
                    x += 1
                }
                let diff = n as i64 * x - m as i64 * y;
                if diff >= threshold || (two_sided && -diff >= threshold) {
                    touched = true;
                }
            }
            hits += u64::from(touched);
        }
        hits as f64 / all as f64
    }

    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 { a } else { gcd(b, a % b) }
    }

    #[test]
    fn exact_probabilities_match_path_enumeration() {
        for (m, n) in [(3, 5), (4, 4), (6, 3), (5, 7), (2, 9), (8, 8)] {
            let g = gcd(m, n);
            let lcm = m / g * n;
            for h in 1..=lcm {
                // `None` is SciPy's own fallback (a rounded 2P above 1).
                if let Some(p2) = two_sided(m, n, g, h) {
                    let want = brute_force(m, n, h, true);
                    assert!(
                        (p2 - want).abs() < 1e-12,
                        "two-sided m={m} n={n} h={h}: {p2} vs {want}"
                    );
                }
                let p1 = one_sided(m, n, g, h).unwrap_or(f64::NAN);
                let want = brute_force(m, n, h, false);
                assert!(
                    (p1 - want).abs() < 1e-12,
                    "one-sided m={m} n={n} h={h}: {p1} vs {want}"
                );
            }
        }
    }
}
