//! The verdict: outcome, reason and measurements from the percentiles, the
//! SLO judgements and the comparison with the incumbent.
//!
//! Order of judgement: more failed live requests than `max_http_errors`
//! make the verdict inconclusive whatever else (the samples would leave out
//! the failing calls). Otherwise any percentile exceeding its SLO or
//! regressing against the incumbent fails it; then a percentile with too
//! few samples, or uncertain against its SLO (unless `when_uncertain =
//! "warn"`), or a comparison requested without anything else to judge,
//! makes it inconclusive; a warning (uncertain with `"warn"`, a rise the
//! test does not confirm) makes it warn; else it passes. The reason opens
//! with the percentiles and their intervals and names every bar crossed.

use gatehouse_plugin_sdk::{Outcome, Verdict, sentences};

use crate::compare::{Incumbent, Regression};
use crate::params::{Params, WhenUncertain};
use crate::percentile::{Estimate, Percentile, Slo};

/// Everything a verdict is made of.
pub struct Judged<'a> {
    pub params: &'a Params,
    /// Where the samples came from, for messages: a source or "live requests".
    pub measured_by: &'a str,
    pub samples: usize,
    /// By `Percentile::index`.
    pub estimates: [Estimate; 3],
    pub slos: [Option<Slo>; 3],
    pub regressions: [Regression; 3],
    pub incumbent: Option<&'a Incumbent>,
    /// Why there is no incumbent, when there is none.
    pub no_incumbent: Option<String>,
    /// Failed live requests, in live mode.
    pub http_errors: Option<HttpErrors>,
}

/// Live requests that gave no sample.
pub struct HttpErrors {
    pub failed: usize,
    pub sent: usize,
    /// Why the first of them failed.
    pub first: Option<String>,
}

/// The gate's verdict.
pub fn verdict(j: &Judged) -> Verdict {
    let params = j.params;
    let level = percent(params.confidence);
    let (mut failures, mut blockers, mut warnings, mut fine) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());

    let max_http_errors = params.live.as_ref().map_or(0.0, |l| l.max_http_errors);
    let http_blocked = match &j.http_errors {
        Some(e) if e.failed as f64 > max_http_errors * e.sent as f64 => {
            blockers.push(format!(
                "{} of {} live requests failed ({}), more than max_http_errors {}; the samples would leave out the failing calls, so fix the endpoint and measure again",
                e.failed,
                e.sent,
                e.first.as_deref().unwrap_or("no reason given"),
                percent(max_http_errors)
            ));
            true
        }
        _ => false,
    };

    for p in Percentile::ALL {
        let i = p.index();
        let e = &j.estimates[i];
        let (name, point) = (p.name(), ms(e.point));
        match (j.slos[i], params.slo(p)) {
            (Some(Slo::Exceeds), Some(slo)) => failures.push(format!(
                "{name} {point} exceeds the SLO {} ms; make the candidate faster or raise `{}`",
                short(slo),
                p.slo_param()
            )),
            (Some(Slo::Uncertain), Some(slo)) => {
                let high = e.interval.map_or(e.point, |i| i.high);
                let text = format!(
                    "{name} {point} is within the SLO {} ms, but its {level} interval reaches {}, so {} samples cannot show the SLO is met; attach more samples",
                    short(slo),
                    ms(high),
                    j.samples
                );
                match params.when_uncertain {
                    WhenUncertain::Inconclusive => blockers.push(format!(
                        "{text} (or set `when_uncertain = \"warn\"`)"
                    )),
                    WhenUncertain::Warn => warnings.push(text),
                }
            }
            (Some(Slo::TooFew { needed }), Some(_)) => blockers.push(format!(
                "{name} needs at least {needed} samples for a {level} interval, and there are {}; attach more samples (or lower `confidence`, or drop `{}`)",
                j.samples,
                p.slo_param()
            )),
            (Some(Slo::Meets), Some(slo)) => fine.push(format!(
                "{name} meets the SLO {} ms at {level} confidence",
                short(slo)
            )),
            _ => {}
        }
        let incumbent_point = j.incumbent.map_or(0.0, |inc| inc.points[i]);
        let bar = params.max_regression(p).unwrap_or_default();
        let mwu = j.incumbent.map_or(1.0, |inc| inc.mwu_p);
        match j.regressions[i] {
            Regression::Regressed { pct } => failures.push(format!(
                "{name} rose {} over the incumbent's {}, more than max_regression_pct {}%, and the shift is significant (one-sided Mann-Whitney p {} < alpha {})",
                rise(pct),
                ms(incumbent_point),
                short(bar),
                p_value(mwu),
                params.alpha
            )),
            Regression::NotSignificant { pct } => warnings.push(format!(
                "{name} rose {} over the incumbent's {}, more than max_regression_pct {}%, but the shift is not significant (one-sided Mann-Whitney p {}, alpha {}); look at the slow requests",
                rise(pct),
                ms(incumbent_point),
                short(bar),
                p_value(mwu),
                params.alpha
            )),
            Regression::TooFew { needed } => blockers.push(format!(
                "comparing {name} with the incumbent needs at least {needed} samples on each side, and there are {} and {}; attach more samples",
                j.samples,
                j.incumbent.map_or(0, |inc| inc.samples)
            )),
            Regression::Within { pct } => fine.push(format!(
                "{name} is within max_regression_pct {}% of the incumbent's ({})",
                short(bar),
                rise(pct)
            )),
            Regression::Unjudged | Regression::NoIncumbent => {}
        }
    }

    let compared = j
        .regressions
        .iter()
        .any(|r| !matches!(r, Regression::Unjudged));
    let slo_judged = j.slos.iter().any(Option::is_some);
    if let Some(why) = &j.no_incumbent
        && compared
    {
        let text = format!("not compared with the incumbent: {why}");
        if slo_judged {
            fine.push(text);
        } else {
            blockers.push(format!("{text}; the gate has no SLO to judge instead, so set one or attach the incumbent's samples"));
        }
    }

    let outcome = if http_blocked {
        Outcome::Inconclusive
    } else if !failures.is_empty() {
        Outcome::Fail
    } else if !blockers.is_empty() {
        Outcome::Inconclusive
    } else if !warnings.is_empty() {
        Outcome::Warn
    } else {
        Outcome::Pass
    };

    let mut parts = vec![summary(j, &level)];
    parts.extend(failures);
    parts.extend(blockers);
    parts.extend(warnings);
    parts.extend(fine);
    let mut verdict = Verdict::new(outcome, sentences(&parts));
    verdict = verdict.with_measurement("samples", j.samples as f64, "samples");
    for p in Percentile::ALL {
        let e = &j.estimates[p.index()];
        verdict = verdict.with_measurement(p.name(), e.point, "ms");
        if let Some(interval) = e.interval {
            verdict = verdict
                .with_measurement(format!("{}_low", p.name()), interval.low, "ms")
                .with_measurement(format!("{}_high", p.name()), interval.high, "ms");
        }
    }
    if let Some(inc) = j.incumbent {
        verdict = verdict.with_measurement("incumbent_samples", inc.samples as f64, "samples");
        for p in Percentile::ALL {
            let point = inc.points[p.index()];
            verdict = verdict.with_measurement(format!("incumbent_{}", p.name()), point, "ms");
            let pct = crate::compare::rise_pct(j.estimates[p.index()].point, point);
            if pct.is_finite() {
                verdict =
                    verdict.with_measurement(format!("regression_pct[{}]", p.name()), pct, "%");
            }
        }
        verdict = verdict.with_measurement("mwu_p", inc.mwu_p, "p");
    }
    if let Some(e) = &j.http_errors {
        verdict = verdict.with_measurement("http_errors", e.failed as f64, "requests");
    }
    verdict
}

/// "600 samples from attachment:latency.jsonl: p50 425.7 ms [418.6, 437.2], ...".
fn summary(j: &Judged, level: &str) -> String {
    let each: Vec<String> = Percentile::ALL
        .iter()
        .map(|&p| {
            let e = &j.estimates[p.index()];
            match e.interval {
                Some(i) => format!(
                    "{} {} [{}, {}]",
                    p.name(),
                    ms(e.point),
                    short(i.low),
                    short(i.high)
                ),
                None => format!(
                    "{} {} (too few samples for an interval)",
                    p.name(),
                    ms(e.point)
                ),
            }
        })
        .collect();
    format!(
        "{} samples from {}: {} ({level} intervals)",
        j.samples,
        j.measured_by,
        each.join(", ")
    )
}

fn ms(value: f64) -> String {
    format!("{} ms", short(value))
}

/// One decimal, without a trailing ".0".
fn short(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

fn rise(pct: f64) -> String {
    if pct.is_finite() {
        format!("{pct:.1}%")
    } else {
        "from 0 ms".to_string()
    }
}

fn percent(share: f64) -> String {
    let text = format!("{:.2}", share * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

fn p_value(p: f64) -> String {
    if p >= 0.001 || p == 0.0 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::stats::Interval;

    use super::*;

    fn live_judged(params: &Params, failed: usize) -> Verdict {
        let estimate = Estimate {
            point: 900.0,
            interval: Some(Interval {
                low: 850.0,
                high: 950.0,
            }),
        };
        verdict(&Judged {
            params,
            measured_by: "live requests",
            samples: 50 - failed,
            estimates: [estimate; 3],
            slos: [Some(Slo::Exceeds), None, None],
            regressions: [Regression::Unjudged; 3],
            incumbent: None,
            no_incumbent: None,
            http_errors: Some(HttpErrors {
                failed,
                sent: 50,
                first: Some("HTTP 503".to_string()),
            }),
        })
    }

    #[test]
    fn too_many_failed_live_requests_make_it_inconclusive_before_all_else() {
        let params = gatehouse_plugin_sdk::parse_params::<Params>(
            r#"{"p50_ms": 500, "live": {"base_url": "http://x"}}"#,
        )
        .expect("valid");
        let verdict = live_judged(&params, 3);
        assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
        assert!(
            verdict
                .reason
                .contains("3 of 50 live requests failed (HTTP 503), more than max_http_errors 5%"),
            "{}",
            verdict.reason
        );
        assert_eq!(verdict.measurement("http_errors"), Some(3.0));
        let verdict = live_judged(&params, 2);
        assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.reason);
    }

    #[test]
    fn figures_read_briefly() {
        assert_eq!(ms(682.724), "682.7 ms");
        assert_eq!(short(1000.0), "1000");
        assert_eq!(percent(0.95), "95%");
        assert_eq!(percent(0.999), "99.9%");
        assert_eq!(rise(122.71), "122.7%");
        assert_eq!(p_value(0.00073), "7.3e-4");
    }
}
