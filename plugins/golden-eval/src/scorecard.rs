//! Every case's score, and the tallies a verdict is made of: overall, per
//! tag, and how many cases had no answer.
//!
//! Rules: a case without an answer scores 0 and fails, so a candidate can
//! never gain by answering less; tags are reported in name order so the
//! measurements of two runs line up.

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::golden::borrowed::Case;

use crate::answers::{Answer, Answers};
use crate::params::Metric;
use crate::scorer::{Score, Scorers};

/// Cases, passes and summed score of a slice of the dataset.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub cases: usize,
    pub passed: usize,
    pub score_sum: f64,
}

impl Tally {
    fn add(&mut self, score: Score) {
        self.cases += 1;
        self.passed += usize::from(score.passed);
        self.score_sum += score.value;
    }

    /// Share of cases that passed; 0 for no cases.
    pub fn pass_rate(&self) -> f64 {
        ratio(self.passed as f64, self.cases)
    }

    /// Mean score; 0 for no cases.
    pub fn mean_score(&self) -> f64 {
        ratio(self.score_sum, self.cases)
    }

    /// The aggregate `metric` names.
    pub fn metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::PassRate => self.pass_rate(),
            Metric::MeanScore => self.mean_score(),
        }
    }
}

fn ratio(part: f64, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { part / whole as f64 }
}

/// The scored dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard<'a> {
    /// One score per case, in the dataset's order.
    pub scores: Vec<Score>,
    pub overall: Tally,
    pub tags: BTreeMap<&'a str, Tally>,
    /// Cases whose attached outputs have no answer.
    pub missing: usize,
    /// Cases whose live request failed.
    pub http_errors: usize,
}

impl<'a> Scorecard<'a> {
    /// Scores every case's answer.
    pub fn score(cases: &'a [Case], scorers: &mut Scorers, answers: &Answers) -> Self {
        let mut card = Scorecard {
            scores: Vec::with_capacity(cases.len()),
            overall: Tally::default(),
            tags: BTreeMap::new(),
            missing: 0,
            http_errors: 0,
        };
        for (index, case) in cases.iter().enumerate() {
            let score = match answers.per_case.get(index) {
                Some(Answer::Given(text)) => scorers.score(index, text),
                Some(Answer::Failed(_)) => {
                    card.http_errors += 1;
                    Score::MISSING
                }
                Some(Answer::Missing) | None => {
                    card.missing += 1;
                    Score::MISSING
                }
            };
            card.overall.add(score);
            for tag in &case.tags {
                card.tags.entry(&**tag).or_default().add(score);
            }
            card.scores.push(score);
        }
        card
    }

    /// Indices of failing cases, worst first (lowest score, then dataset
    /// order), at most `limit`.
    pub fn worst_failures(&self, limit: usize) -> Vec<usize> {
        let mut failing: Vec<usize> = (0..self.scores.len())
            .filter(|&i| !self.scores[i].passed)
            .collect();
        failing.sort_by(|&a, &b| {
            self.scores[a]
                .value
                .total_cmp(&self.scores[b].value)
                .then(a.cmp(&b))
        });
        failing.truncate(limit);
        failing
    }

    /// Tags by pass rate, weakest first (ties by name), at most `limit`.
    pub fn weakest_tags(&self, limit: usize) -> Vec<(&'a str, Tally)> {
        let mut tags: Vec<(&'a str, Tally)> =
            self.tags.iter().map(|(t, tally)| (*t, *tally)).collect();
        tags.sort_by(|a, b| {
            a.1.pass_rate()
                .total_cmp(&b.1.pass_rate())
                .then(a.0.cmp(b.0))
        });
        tags.truncate(limit);
        tags
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use gatehouse_plugin_sdk::golden::borrowed::Expected;

    use super::*;
    use crate::params::Params;

    fn case<'a>(id: &'a str, expected: &'a str, tags: &[&'a str]) -> Case<'a> {
        Case {
            id: Cow::Borrowed(id),
            input: Cow::Borrowed(""),
            expected: Expected::Text(Cow::Borrowed(expected)),
            tags: tags.iter().map(|t| Cow::Borrowed(*t)).collect(),
            scorer: None,
        }
    }

    fn card_for<'a>(cases: &'a [Case], answers: &[Answer]) -> Scorecard<'a> {
        let params = gatehouse_plugin_sdk::params::parse::<Params>(
            r#"{"dataset": "attachment:g.jsonl", "threshold": 0.5}"#,
        )
        .expect("params");
        let mut scorers = Scorers::prepare(&params, "g.jsonl", cases).expect("prepares");
        let answers = Answers {
            per_case: answers.to_vec(),
            unmatched: 0,
        };
        Scorecard::score(cases, &mut scorers, &answers)
    }

    #[test]
    fn tags_are_tallied_separately_and_in_name_order() {
        let cases = [
            case("1", "billing", &["billing", "short"]),
            case("2", "billing", &["billing", "long"]),
            case("3", "outage", &["outage", "short"]),
            case("4", "outage", &["outage"]),
        ];
        let card = card_for(
            &cases,
            &[
                Answer::Given("billing"),
                Answer::Given("account"),
                Answer::Given("outage"),
                Answer::Given("outage"),
            ],
        );
        assert_eq!(
            card.overall,
            Tally {
                cases: 4,
                passed: 3,
                score_sum: 3.0
            }
        );
        assert_eq!(
            card.tags.keys().copied().collect::<Vec<_>>(),
            ["billing", "long", "outage", "short"]
        );
        assert_eq!(card.tags["billing"].pass_rate(), 0.5);
        assert_eq!(card.tags["outage"].pass_rate(), 1.0);
        assert_eq!(card.tags["long"].pass_rate(), 0.0);
        assert_eq!(
            card.weakest_tags(2),
            [
                ("long", card.tags["long"]),
                ("billing", card.tags["billing"])
            ]
        );
        assert_eq!(card.overall.metric(Metric::PassRate), 0.75);
    }

    #[test]
    fn missing_and_failed_answers_score_zero_and_are_counted_apart() {
        let cases = [
            case("1", "a", &[]),
            case("2", "b", &[]),
            case("3", "c", &[]),
        ];
        let card = card_for(
            &cases,
            &[
                Answer::Missing,
                Answer::Failed("HTTP 500"),
                Answer::Given("c"),
            ],
        );
        assert_eq!(card.missing, 1);
        assert_eq!(card.http_errors, 1);
        assert_eq!(card.overall.passed, 1);
        assert_eq!(card.worst_failures(5), [0, 1]);
    }

    #[test]
    fn empty_slices_have_zero_rates_not_nan() {
        let tally = Tally::default();
        assert_eq!(tally.pass_rate(), 0.0);
        assert_eq!(tally.mean_score(), 0.0);
    }
}
