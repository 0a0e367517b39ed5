//! Agreement of `gatehouse_stats` with SciPy and NumPy.
//!
//! The fixtures in `tests/fixtures/stats/` hold inputs and SciPy's outputs
//! (regenerate them with `python tests/fixtures/stats/generate.py`). Every
//! statistic and p-value must agree to 1e-9 relative; values below 1e-300
//! (subnormal territory, where relative error is meaningless) to 1e-300
//! absolute. Run with `--nocapture` to see the worst error per function.

use gatehouse_stats::{
    Alternative, binomial_test, chi2_contingency, chi2_sf, chisquare, jensen_shannon, ks_2samp,
    mann_whitney_u, mcnemar_exact, normal_cdf, normal_sf, paired_bootstrap, psi, quantile,
    quantile_ci,
};
use serde_json::Value;

const RELATIVE: f64 = 1e-9;
const ABSOLUTE_BELOW: f64 = 1e-300;

/// Tracks the worst relative error of one function across a fixture.
struct Agreement {
    what: &'static str,
    worst: f64,
    checked: usize,
}

impl Agreement {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            worst: 0.0,
            checked: 0,
        }
    }

    fn check(&mut self, got: f64, want: f64, context: &dyn Fn() -> String) {
        self.checked += 1;
        if want.abs() < ABSOLUTE_BELOW {
            assert!(
                (got - want).abs() <= ABSOLUTE_BELOW,
                "{}: got {got:e}, SciPy {want:e} ({})",
                self.what,
                context()
            );
            return;
        }
        let error = ((got - want) / want).abs();
        assert!(
            error <= RELATIVE,
            "{}: got {got:e}, SciPy {want:e}, relative error {error:e} ({})",
            self.what,
            context()
        );
        self.worst = self.worst.max(error);
    }
}

impl Drop for Agreement {
    fn drop(&mut self) {
        eprintln!(
            "{}: {} values, worst relative error {:e}",
            self.what, self.checked, self.worst
        );
    }
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is valid JSON; regenerate it with generate.py")
}

fn cases(doc: &Value, key: &str) -> Vec<Value> {
    doc[key]
        .as_array()
        .expect("fixture has a case list")
        .clone()
}

fn number(v: &Value) -> f64 {
    v.as_f64().expect("fixture value is a number")
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("fixture value is an array")
        .iter()
        .map(number)
        .collect()
}

fn name(case: &Value) -> String {
    case["name"].as_str().unwrap_or("").to_string()
}

fn alternative(case: &Value) -> Alternative {
    match case["alternative"].as_str() {
        Some("less") => Alternative::Less,
        Some("greater") => Alternative::Greater,
        _ => Alternative::TwoSided,
    }
}

/// The fixture generator's shared sample: SplitMix64 uniforms, Irwin-Hall
/// sums of 12, optionally snapped to a grid (see generate.py).
fn generated(spec: &Value) -> Vec<f64> {
    let mut state = spec["seed"].as_u64().expect("seed");
    let len = spec["len"].as_u64().expect("len") as usize;
    let loc = spec.get("loc").map_or(0.0, number);
    let scale = spec.get("scale").map_or(1.0, number);
    let step = spec.get("step").map_or(0.0, number);
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..len)
        .map(|_| {
            let mut total = 0.0;
            for _ in 0..12 {
                total += (next() >> 11) as f64 * 2f64.powi(-53);
            }
            let v = loc + scale * (total - 6.0);
            if step > 0.0 {
                (v / step + 0.5).floor() * step
            } else {
                v
            }
        })
        .collect()
}

fn sample(v: &Value) -> Vec<f64> {
    match v.get("generated") {
        Some(spec) => generated(spec),
        None => numbers(v),
    }
}

#[test]
fn mann_whitney_u_matches_scipy_asymptotic() {
    let doc = fixture(include_str!(
        "../../../tests/fixtures/stats/mann_whitney.json"
    ));
    let mut statistic = Agreement::new("mann_whitney_u statistic");
    let mut p_value = Agreement::new("mann_whitney_u p-value");
    for case in cases(&doc, "cases") {
        let (x, y) = (sample(&case["x"]), sample(&case["y"]));
        let r = mann_whitney_u(&x, &y, alternative(&case)).expect("valid input");
        let context = || format!("{} {:?}", name(&case), alternative(&case));
        statistic.check(r.statistic, number(&case["statistic"]), &context);
        p_value.check(r.p_value, number(&case["p_value"]), &context);
    }
}

#[test]
fn ks_2samp_matches_scipy_auto_method() {
    let doc = fixture(include_str!("../../../tests/fixtures/stats/ks_2samp.json"));
    let mut statistic = Agreement::new("ks_2samp statistic");
    let mut p_value = Agreement::new("ks_2samp p-value");
    for case in cases(&doc, "cases") {
        let (x, y) = (sample(&case["x"]), sample(&case["y"]));
        let r = ks_2samp(&x, &y, alternative(&case)).expect("valid input");
        let context = || format!("{} {:?}", name(&case), alternative(&case));
        statistic.check(r.statistic, number(&case["statistic"]), &context);
        p_value.check(r.p_value, number(&case["p_value"]), &context);
    }
}

#[test]
fn chisquare_matches_scipy() {
    let doc = fixture(include_str!("../../../tests/fixtures/stats/chisquare.json"));
    let mut statistic = Agreement::new("chisquare statistic");
    let mut p_value = Agreement::new("chisquare p-value");
    for case in cases(&doc, "cases") {
        let r = chisquare(&numbers(&case["observed"]), &numbers(&case["expected"]))
            .expect("valid input");
        let context = || name(&case);
        statistic.check(r.statistic, number(&case["statistic"]), &context);
        p_value.check(r.p_value, number(&case["p_value"]), &context);
    }
}

#[test]
fn chi2_contingency_matches_scipy_with_yates() {
    let doc = fixture(include_str!(
        "../../../tests/fixtures/stats/chi2_contingency.json"
    ));
    let mut statistic = Agreement::new("chi2_contingency statistic");
    let mut p_value = Agreement::new("chi2_contingency p-value");
    for case in cases(&doc, "cases") {
        let table: Vec<Vec<f64>> = case["table"]
            .as_array()
            .expect("table rows")
            .iter()
            .map(numbers)
            .collect();
        let r = chi2_contingency(&table).expect("valid input");
        let context = || name(&case);
        statistic.check(r.statistic, number(&case["statistic"]), &context);
        p_value.check(r.p_value, number(&case["p_value"]), &context);
    }
}

#[test]
fn psi_matches_the_numpy_construction() {
    let doc = fixture(include_str!("../../../tests/fixtures/stats/psi.json"));
    let mut index = Agreement::new("psi");
    for case in cases(&doc, "cases") {
        let bins = case["bins"].as_u64().expect("bins") as usize;
        let got =
            psi(&sample(&case["reference"]), &sample(&case["actual"]), bins).expect("valid input");
        index.check(got, number(&case["psi"]), &|| name(&case));
    }
}

#[test]
fn jensen_shannon_matches_scipy_base_2() {
    let doc = fixture(include_str!(
        "../../../tests/fixtures/stats/jensen_shannon.json"
    ));
    let mut distance = Agreement::new("jensen_shannon");
    for case in cases(&doc, "cases") {
        let got = jensen_shannon(&numbers(&case["p"]), &numbers(&case["q"])).expect("valid input");
        distance.check(got, number(&case["distance"]), &|| name(&case));
    }
}

#[test]
fn quantile_matches_numpy_linear() {
    let doc = fixture(include_str!("../../../tests/fixtures/stats/quantile.json"));
    let mut agreement = Agreement::new("quantile");
    for case in cases(&doc, "cases") {
        let sorted = numbers(&case["sorted"]);
        for (q, want) in numbers(&case["q"])
            .into_iter()
            .zip(numbers(&case["quantile"]))
        {
            let got = quantile(&sorted, q).expect("valid input");
            agreement.check(got, want, &|| format!("{} q={q}", name(&case)));
        }
    }
}

#[test]
fn quantile_ci_matches_scipy_quantile_test() {
    let doc = fixture(include_str!(
        "../../../tests/fixtures/stats/quantile_ci.json"
    ));
    let mut bounds = Agreement::new("quantile_ci bounds");
    for case in cases(&doc, "cases") {
        let n = case["n"].as_u64().expect("n");
        let sorted: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
        let (q, confidence) = (number(&case["q"]), number(&case["confidence"]));
        let context = || format!("n={n} q={q} confidence={confidence}");
        match (case["low"].as_f64(), case["high"].as_f64()) {
            (Some(low), Some(high)) => {
                let ci = quantile_ci(&sorted, q, confidence)
                    .unwrap_or_else(|e| panic!("{}: {e}", context()));
                bounds.check(ci.low, low, &context);
                bounds.check(ci.high, high, &context);
            }
            _ => {
                let err = quantile_ci(&sorted, q, confidence)
                    .expect_err("SciPy has no bound here, so this must be an error");
                assert!(err.to_string().contains("too few"), "{err}");
            }
        }
    }
}

#[test]
fn binomial_test_matches_scipy_binomtest() {
    let doc = fixture(include_str!("../../../tests/fixtures/stats/binomial.json"));
    let mut p_value = Agreement::new("binomial_test p-value");
    for case in cases(&doc, "cases") {
        let (k, n) = (
            case["successes"].as_u64().expect("k"),
            case["trials"].as_u64().expect("n"),
        );
        let p = number(&case["p"]);
        let got = binomial_test(k, n, p).expect("valid input");
        p_value.check(got, number(&case["p_value"]), &|| {
            format!("k={k} n={n} p={p}")
        });
    }
    let mut mcnemar = Agreement::new("mcnemar_exact p-value");
    for case in cases(&doc, "mcnemar") {
        let (b, c) = (
            case["b"].as_u64().expect("b"),
            case["c"].as_u64().expect("c"),
        );
        let got = mcnemar_exact(b, c).expect("valid input");
        mcnemar.check(got, number(&case["p_value"]), &|| format!("b={b} c={c}"));
    }
}

#[test]
fn paired_bootstrap_matches_the_documented_construction() {
    let doc = fixture(include_str!("../../../tests/fixtures/stats/bootstrap.json"));
    let mut agreement = Agreement::new("paired_bootstrap");
    for case in cases(&doc, "cases") {
        let resamples = case["resamples"].as_u64().expect("resamples") as u32;
        let b = paired_bootstrap(
            &numbers(&case["candidate"]),
            &numbers(&case["incumbent"]),
            resamples,
            number(&case["confidence"]),
            case["seed"].as_u64().expect("seed"),
        )
        .expect("valid input");
        let context = || name(&case);
        agreement.check(
            b.mean_difference,
            number(&case["mean_difference"]),
            &context,
        );
        agreement.check(b.low, number(&case["low"]), &context);
        agreement.check(b.high, number(&case["high"]), &context);
    }
}

#[test]
fn normal_and_chi2_tails_match_scipy() {
    let doc = fixture(include_str!("../../../tests/fixtures/stats/special.json"));
    let mut cdf = Agreement::new("normal_cdf");
    let mut sf = Agreement::new("normal_sf");
    for case in cases(&doc["cases"], "normal") {
        let x = number(&case["x"]);
        cdf.check(normal_cdf(x), number(&case["cdf"]), &|| format!("x={x}"));
        sf.check(normal_sf(x), number(&case["sf"]), &|| format!("x={x}"));
    }
    let mut chi2 = Agreement::new("chi2_sf");
    for case in cases(&doc["cases"], "chi2") {
        let (x, dof) = (number(&case["x"]), number(&case["dof"]));
        chi2.check(chi2_sf(x, dof), number(&case["sf"]), &|| {
            format!("x={x} dof={dof}")
        });
    }
}

#[test]
fn every_function_rejects_nan_with_the_index() {
    let bad = [1.0, f64::NAN, 2.0];
    let good = [1.0, 2.0, 3.0];
    let messages = [
        mann_whitney_u(&good, &bad, Alternative::TwoSided).map(|_| ()),
        ks_2samp(&bad, &good, Alternative::Less).map(|_| ()),
        chisquare(&bad, &good).map(|_| ()),
        psi(&good, &bad, 4).map(|_| ()),
        jensen_shannon(&good, &bad).map(|_| ()),
        quantile(&bad, 0.5).map(|_| ()),
        quantile_ci(&bad, 0.5, 0.9).map(|_| ()),
        paired_bootstrap(&good, &bad, 100, 0.9, 1).map(|_| ()),
    ];
    for result in messages {
        let message = result.expect_err("NaN must be rejected").to_string();
        assert!(message.contains("[1]` is NaN"), "{message}");
    }
    let table = vec![vec![1.0, f64::NAN], vec![2.0, 3.0]];
    let message = chi2_contingency(&table).unwrap_err().to_string();
    assert!(message.contains("row 0, column 1 is NaN"), "{message}");
}

#[test]
fn every_function_rejects_empty_input() {
    let empty: [f64; 0] = [];
    let good = [1.0, 2.0];
    assert!(mann_whitney_u(&empty, &good, Alternative::TwoSided).is_err());
    assert!(ks_2samp(&good, &empty, Alternative::TwoSided).is_err());
    assert!(chisquare(&empty, &empty).is_err());
    assert!(psi(&empty, &good, 10).is_err());
    assert!(jensen_shannon(&empty, &empty).is_err());
    assert!(quantile(&empty, 0.5).is_err());
    assert!(quantile_ci(&empty, 0.5, 0.9).is_err());
    assert!(paired_bootstrap(&empty, &empty, 10, 0.9, 1).is_err());
    assert!(chi2_contingency(&[]).is_err());
}
