//! Checks the private distributions behind `ks_2samp` against SciPy's
//! `kstwo.sf` and `special.smirnov` in `tests/fixtures/stats/kstwo.json`,
//! across every branch SciPy takes (Ruben-Gambino ends, Durbin matrix,
//! Pomeranz, Smirnov sum, Pelz-Good, the n > 1e6 asymptotic form). The
//! public functions are checked in `plugin-sdk/stats/tests/stats_reference.rs`.

use super::kolmogorov::kstwo_sf;
use super::smirnov::smirnov_sf;
use serde_json::Value;

const RELATIVE: f64 = 1e-9;
const ABSOLUTE_BELOW: f64 = 1e-300;

fn relative_error(got: f64, want: f64) -> f64 {
    if want.abs() < ABSOLUTE_BELOW {
        assert!(
            (got - want).abs() <= ABSOLUTE_BELOW,
            "got {got:e}, SciPy {want:e}"
        );
        0.0
    } else {
        ((got - want) / want).abs()
    }
}

fn check_all(key: &str, f: impl Fn(u64, f64) -> f64) {
    let doc: Value = serde_json::from_str(include_str!("../../../tests/fixtures/stats/kstwo.json"))
        .expect("fixture is valid JSON");
    let mut worst = 0.0_f64;
    let cases = doc[key].as_array().expect("case list");
    for case in cases {
        let n = case["n"].as_u64().expect("n");
        let x = case["x"].as_f64().expect("x");
        let want = case["sf"].as_f64().expect("sf");
        let got = f(n, x);
        let error = relative_error(got, want);
        assert!(
            error <= RELATIVE,
            "{key} n={n} x={x}: got {got:e}, SciPy {want:e}, relative error {error:e}"
        );
        worst = worst.max(error);
    }
    eprintln!(
        "{key}: {} values, worst relative error {worst:e}",
        cases.len()
    );
}

#[test]
fn kstwo_survival_matches_scipy_in_every_branch() {
    check_all("cases", |n, x| kstwo_sf(x, n));
}

#[test]
fn smirnov_survival_matches_scipy() {
    check_all("smirnov", smirnov_sf);
}
