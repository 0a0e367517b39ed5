//! The verdict: outcome, reason and measurements from a scored dataset and
//! the comparison with the incumbent.
//!
//! Order of judgement: too many cases without an answer (missing outputs,
//! failed live requests) make the verdict inconclusive, never a pass, since
//! the score would describe a different dataset. Otherwise it fails when the
//! aggregate is under `threshold` or the candidate regressed against the
//! incumbent, and passes when neither. The reason always states the
//! aggregate, and lists the worst failing cases (id, expected, got, score;
//! at most five, each clipped) whenever some case fails. The score is the
//! aggregate `metric` names.

use gatehouse_plugin_sdk::golden::borrowed::Case;
use gatehouse_plugin_sdk::{Outcome, Verdict};

use crate::answers::{Answer, Answers};
use crate::compare::{Comparison, Incumbent};
use crate::params::{Metric, Params};
use crate::scorecard::Scorecard;
use crate::scorer::Scorers;

/// Failing cases listed in a reason.
pub const WORST_CASES: usize = 5;
/// Weakest tags named in a failing reason.
const WEAKEST_TAGS: usize = 3;

/// Everything a verdict is made of.
pub struct Judged<'r, 'a> {
    pub params: &'r Params,
    pub cases: &'a [Case<'a>],
    pub answers: &'r Answers<'r>,
    pub scorers: &'r Scorers<'a>,
    pub card: &'r Scorecard<'a>,
    pub incumbent: &'r Incumbent,
    /// Where the outputs came from, for messages: a source or "live requests".
    pub answered_by: &'r str,
}

/// The gate's verdict.
pub fn verdict(j: &Judged) -> Verdict {
    let params = j.params;
    let total = j.cases.len();
    let aggregate = j.card.overall.metric(params.metric);
    let mut blockers = Vec::new();
    if share(j.card.missing, total) > params.max_missing {
        blockers.push(format!(
            "{} of {total} cases have no output in {}, more than max_missing {}; attach an output for every case",
            j.card.missing,
            j.answered_by,
            percent(params.max_missing)
        ));
    }
    if share(j.card.http_errors, total) > params.max_http_errors {
        blockers.push(format!(
            "{} of {total} live requests failed ({}), more than max_http_errors {}; check the endpoint and retry",
            j.card.http_errors,
            first_failure(j).unwrap_or_default(),
            percent(params.max_http_errors)
        ));
    }
    let mut failures = Vec::new();
    // A hair of slack so 198/220 meets 0.9 whatever the rounding.
    let meets = aggregate + 1e-12 >= params.threshold;
    if !meets {
        failures.push(format!(
            "{} is below the threshold {}; fix what the weakest tags and failing cases below show, or lower `threshold`",
            summary(j),
            params.threshold
        ));
    }
    let comparison = match j.incumbent {
        Incumbent::Compared(c) => Some(c),
        _ => None,
    };
    if let Some(c) = comparison.filter(|c| c.regressed()) {
        failures.push(regression(c));
    }

    let mut parts = Vec::new();
    let outcome = if !blockers.is_empty() {
        parts.push(blockers.join("; "));
        parts.push(summary(j));
        Outcome::Inconclusive
    } else if !failures.is_empty() {
        parts.append(&mut failures);
        if meets {
            parts.push(format!(
                "{} meets the threshold {}",
                summary(j),
                params.threshold
            ));
        }
        Outcome::Fail
    } else {
        parts.push(format!(
            "{} meets the threshold {}",
            summary(j),
            params.threshold
        ));
        Outcome::Pass
    };
    if comparison.is_none_or(|c| !c.regressed()) {
        parts.push(incumbent_note(j.incumbent));
    }
    if outcome != Outcome::Pass && !j.card.tags.is_empty() {
        parts.push(weakest_tags(j));
    }
    if j.card.missing > 0 && outcome != Outcome::Inconclusive {
        parts.push(format!(
            "{} cases had no output and count as failures",
            j.card.missing
        ));
    }
    if j.card.http_errors > 0 && outcome != Outcome::Inconclusive {
        parts.push(format!(
            "{} live requests failed and count as failures ({})",
            j.card.http_errors,
            first_failure(j).unwrap_or_default()
        ));
    }
    if j.answers.unmatched > 0 {
        parts.push(format!(
            "{} outputs answer no case of the dataset (outputs for another dataset version?)",
            j.answers.unmatched
        ));
    }
    let worst = j.card.worst_failures(WORST_CASES);
    if !worst.is_empty() {
        parts.push(format!("worst failing cases: {}", worst_cases(j, &worst)));
    }

    let score = if outcome == Outcome::Inconclusive {
        0.0
    } else {
        aggregate
    };
    let verdict = Verdict::new(outcome, parts.join("; ")).with_score(score);
    measurements(j, verdict)
}

fn summary(j: &Judged) -> String {
    let o = &j.card.overall;
    let rate = format!(
        "pass rate {:.3} ({} of {} cases)",
        o.pass_rate(),
        o.passed,
        o.cases
    );
    match j.params.metric {
        Metric::PassRate => rate,
        Metric::MeanScore => format!("mean score {:.3} ({rate})", o.mean_score()),
    }
}

fn regression(c: &Comparison) -> String {
    let mut why = Vec::new();
    if c.worse_by_mcnemar() {
        why.push(format!(
            "{} cases the incumbent passed now fail and {} improve (McNemar one-sided p={} < alpha {})",
            c.worse,
            c.better,
            p_value(c.mcnemar_p / 2.0),
            c.alpha
        ));
    }
    if c.worse_by_bootstrap() {
        why.push(format!(
            "the mean score difference {} is below 0",
            interval(c)
        ));
    }
    format!(
        "significantly worse than the incumbent on {} paired cases: {}; fix the regression before releasing",
        c.paired,
        why.join(", and ")
    )
}

fn incumbent_note(incumbent: &Incumbent) -> String {
    match incumbent {
        Incumbent::Absent { source } => {
            format!("not compared with the incumbent: no outputs at {source}")
        }
        Incumbent::NoPairs { source } => {
            format!(
                "not compared with the incumbent: the outputs at {source} answer none of these cases"
            )
        }
        Incumbent::Compared(c) => format!(
            "no significant regression against the incumbent on {} paired cases ({} worse, {} better, McNemar p={}; mean score difference {})",
            c.paired,
            c.worse,
            c.better,
            p_value(c.mcnemar_p),
            interval(c)
        ),
    }
}

fn interval(c: &Comparison) -> String {
    format!(
        "{:+.3}, {}% interval [{:+.3}, {:+.3}]",
        c.bootstrap.mean_difference,
        (c.confidence * 100.0).round(),
        c.bootstrap.low,
        c.bootstrap.high
    )
}

fn weakest_tags(j: &Judged) -> String {
    let tags: Vec<String> = j
        .card
        .weakest_tags(WEAKEST_TAGS)
        .iter()
        .map(|(tag, t)| format!("{tag} {:.3} ({} of {})", t.pass_rate(), t.passed, t.cases))
        .collect();
    format!("weakest tags by pass rate: {}", tags.join(", "))
}

fn worst_cases(j: &Judged, worst: &[usize]) -> String {
    let lines: Vec<String> = worst
        .iter()
        .map(|&i| {
            let case = &j.cases[i];
            let got = match j.answers.per_case.get(i) {
                Some(Answer::Given(text)) => {
                    let mut got = format!("{:?}", clip(text, 40));
                    if let Some(why) = j.scorers.explain(i, text) {
                        got.push_str(&format!(" ({})", clip(&why, 60)));
                    }
                    got
                }
                Some(Answer::Failed(why)) => format!("no answer ({})", clip(why, 60)),
                Some(Answer::Missing) | None => "no output".to_string(),
            };
            format!(
                "{} expected {} got {got} score {:.2}",
                case.id,
                clip(&case.expected.to_string(), 40),
                j.card.scores[i].value
            )
        })
        .collect();
    lines.join("; ")
}

fn first_failure(j: &Judged) -> Option<String> {
    j.cases
        .iter()
        .zip(&j.answers.per_case)
        .find_map(|(case, answer)| match answer {
            Answer::Failed(why) => Some(format!("first: case {} {}", case.id, clip(why, 60))),
            _ => None,
        })
}

fn measurements(j: &Judged, verdict: Verdict) -> Verdict {
    let o = &j.card.overall;
    let mut v = verdict
        .with_measurement("cases", o.cases as f64, "cases")
        .with_measurement("pass_rate", o.pass_rate(), "ratio")
        .with_measurement("mean_score", o.mean_score(), "score")
        .with_measurement("missing", j.card.missing as f64, "cases")
        .with_measurement("http_errors", j.card.http_errors as f64, "cases");
    for (tag, tally) in &j.card.tags {
        v = v.with_measurement(format!("pass_rate[{tag}]"), tally.pass_rate(), "ratio");
        if j.params.metric == Metric::MeanScore {
            v = v.with_measurement(format!("mean_score[{tag}]"), tally.mean_score(), "score");
        }
    }
    if let Incumbent::Compared(c) = j.incumbent {
        v = v
            .with_measurement("paired_cases", c.paired as f64, "cases")
            .with_measurement("worse_than_incumbent", c.worse as f64, "cases")
            .with_measurement("better_than_incumbent", c.better as f64, "cases")
            .with_measurement("mcnemar_p", c.mcnemar_p, "p")
            .with_measurement(
                "bootstrap_mean_difference",
                c.bootstrap.mean_difference,
                "score",
            )
            .with_measurement("bootstrap_low", c.bootstrap.low, "score")
            .with_measurement("bootstrap_high", c.bootstrap.high, "score")
            .with_measurement("bootstrap_resamples", f64::from(c.resamples), "resamples");
    }
    v
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn percent(share: f64) -> String {
    format!("{}%", (share * 1000.0).round() / 10.0)
}

fn p_value(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// `text` cut to at most `max` characters, with `…` when cut, on one line.
pub fn clip(text: &str, max: usize) -> String {
    let one_line = text.trim();
    let mut out: String = one_line
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().nth(max).is_some() {
        out.pop();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use gatehouse_plugin_sdk::golden::borrowed::Expected;

    use super::*;

    /// Judges 40 cases answered live, the first `failed` of whose requests failed.
    fn live_verdict(failed: usize) -> Verdict {
        // Parsed but not checked: a build without live mode refuses `live`.
        let params = gatehouse_plugin_sdk::parse_params::<Params>(r#"{"dataset": "attachment:g.jsonl", "threshold": 0.9, "live": {"base_url": "http://127.0.0.1:8089"}}"#)
            .expect("params");
        let cases: Vec<Case> = (0..40)
            .map(|i| Case {
                id: Cow::Owned(format!("c{i}")),
                input: Cow::Borrowed(""),
                expected: Expected::Text(Cow::Borrowed("billing")),
                tags: Vec::new(),
                scorer: None,
            })
            .collect();
        let results: Vec<Result<String, String>> = (0..40)
            .map(|i| {
                if i < failed {
                    Err("HTTP 503: busy".to_string())
                } else {
                    Ok("billing".to_string())
                }
            })
            .collect();
        let answers = Answers::live(&results);
        let mut scorers = Scorers::prepare(&params, "g.jsonl", &cases).expect("prepares");
        let card = Scorecard::score(&cases, &mut scorers, &answers);
        let incumbent = Incumbent::Absent {
            source: params.incumbent_outputs.clone(),
        };
        verdict(&Judged {
            params: &params,
            cases: &cases,
            answers: &answers,
            scorers: &scorers,
            card: &card,
            incumbent: &incumbent,
            answered_by: "live requests",
        })
    }

    #[test]
    fn a_few_failed_requests_are_reported_and_fail_their_cases() {
        let verdict = live_verdict(2);
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
        assert_eq!(verdict.measurement("http_errors"), Some(2.0));
        assert_eq!(verdict.measurement("pass_rate"), Some(0.95));
        assert!(
            verdict.reason.contains(
                "2 live requests failed and count as failures (first: case c0 HTTP 503: busy)"
            ),
            "{}",
            verdict.reason
        );
        assert!(
            verdict
                .reason
                .contains("c1 expected \"billing\" got no answer (HTTP 503: busy)"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn too_many_failed_requests_are_inconclusive_never_a_pass() {
        let verdict = live_verdict(3);
        assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
        assert!(
            verdict.reason.starts_with("3 of 40 live requests failed (first: case c0 HTTP 503: busy), more than max_http_errors 5%"),
            "{}",
            verdict.reason
        );
        assert_eq!(verdict.score, 0.0);
    }

    #[test]
    fn clip_keeps_short_text_and_marks_cuts_on_char_boundaries() {
        assert_eq!(clip("  billing\n", 10), "billing");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("请帮我重置密码谢谢", 5), "请帮我重…");
        assert_eq!(clip("line\nbreak", 20), "line break");
    }

    #[test]
    fn small_p_values_read_in_scientific_notation() {
        assert_eq!(p_value(0.0314), "0.031");
        assert_eq!(p_value(0.000012), "1.2e-5");
        assert_eq!(percent(0.05), "5%");
    }
}
