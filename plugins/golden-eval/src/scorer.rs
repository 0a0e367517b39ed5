//! Scoring one case's output against its `expected`: a score in 0..=1 and
//! whether it reaches the case's pass mark.
//!
//! Every case is checked when the scorers are prepared, before any output is
//! read: an unknown scorer name, an `expected` the scorer cannot read, an
//! invalid pattern or schema is an error naming the case, whether or not the
//! case has an output. Preparing also compiles each distinct regex and
//! schema once, so scoring allocates nothing for text scorers beyond
//! buffers reused from case to case.
//!
//! Text scorers (`exact`, `normalized`, `token_f1`) read `expected` as a
//! string, a number or boolean (its JSON text), or an array of those (any
//! of them is right: the score is the best, as SQuAD scores several
//! references). Outputs are trimmed before `exact`, `regex`, `json_schema`
//! and `numeric` scoring.

mod expected;

use std::borrow::Cow;
use std::collections::HashMap;

use gatehouse_plugin_sdk::golden::borrowed::{Case, Expected};
use regex::Regex;
use serde_json::Value;

use crate::json_schema::Schema;
use crate::numeric::first_number;
use crate::params::{Params, ScorerKind};
use crate::squad::Normalizer;
use expected::{RightAnswers, expected_number, texts};

/// What one output scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// 0.0 (wrong) to 1.0 (right).
    pub value: f64,
    /// Whether `value` reaches the case's pass mark.
    pub passed: bool,
}

impl Score {
    /// A case without an output.
    pub const MISSING: Score = Score {
        value: 0.0,
        passed: false,
    };
}

/// The scorers of one dataset, prepared case by case.
#[derive(Debug)]
pub struct Scorers<'a> {
    rules: Vec<(Rule<'a>, f64)>,
    regexes: Vec<Regex>,
    schemas: Vec<Schema>,
    abs_tol: f64,
    rel_tol: f64,
    normalizer: Normalizer,
    /// The output being scored, normalised; kept to reuse its buffer.
    normalized_output: String,
}

#[derive(Debug)]
enum Rule<'a> {
    Exact(RightAnswers<'a>),
    Normalized(RightAnswers<'a>),
    TokenF1(RightAnswers<'a>),
    Regex(usize),
    JsonSchema(usize),
    Numeric(f64),
}

impl<'a> Scorers<'a> {
    /// Prepares a scorer for every case of the dataset read from `source`.
    pub fn prepare(params: &Params, source: &str, cases: &'a [Case]) -> Result<Self, String> {
        let mut scorers = Scorers {
            rules: Vec::with_capacity(cases.len()),
            regexes: Vec::new(),
            schemas: Vec::new(),
            abs_tol: params.abs_tol,
            rel_tol: params.rel_tol,
            normalizer: Normalizer::default(),
            normalized_output: String::new(),
        };
        let params_schema = match &params.schema {
            Some(schema) => {
                scorers.schemas.push(
                    Schema::compile(schema)
                        .map_err(|e| format!("invalid gate param `schema`: {e}"))?,
                );
                Some(0)
            }
            None => None,
        };
        let mut regex_index: HashMap<&'a str, usize> = HashMap::new();
        for case in cases {
            let fail = |why: String| format!("{source}: case {:?}: {why}", case.id);
            let kind = match case.scorer.as_deref() {
                None => params.scorer,
                Some(name) => ScorerKind::parse(name).ok_or_else(|| {
                    fail(format!(
                        "unknown scorer {name:?}; use one of {}",
                        ScorerKind::NAMES
                    ))
                })?,
            };
            let rule = match kind {
                ScorerKind::Exact => Rule::Exact(texts(&case.expected).map_err(fail)?.trimmed()),
                // References are normalised once here, not once per score.
                ScorerKind::Normalized => {
                    Rule::Normalized(scorers.normalize_all(texts(&case.expected).map_err(fail)?))
                }
                ScorerKind::TokenF1 => {
                    Rule::TokenF1(scorers.normalize_all(texts(&case.expected).map_err(fail)?))
                }
                ScorerKind::Regex => {
                    let Expected::Text(pattern) = &case.expected else {
                        return Err(fail(format!(
                            "the regex scorer needs `expected` to be a pattern string, found {}",
                            case.expected.kind()
                        )));
                    };
                    let next = scorers.regexes.len();
                    let index = *regex_index.entry(&**pattern).or_insert(next);
                    if index == next {
                        // Anchored on both ends: the whole output must match.
                        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                            fail(format!("invalid regex {pattern:?} in `expected`: {e}"))
                        })?;
                        scorers.regexes.push(regex);
                    }
                    Rule::Regex(index)
                }
                ScorerKind::JsonSchema => match (&case.expected, params_schema) {
                    (Expected::Json(schema @ (Value::Object(_) | Value::Bool(_))), _) => {
                        let schema = Schema::compile(schema)
                            .map_err(|e| fail(format!("`expected` is not a usable {e}")))?;
                        scorers.schemas.push(schema);
                        Rule::JsonSchema(scorers.schemas.len() - 1)
                    }
                    (_, Some(index)) => Rule::JsonSchema(index),
                    (other, None) => {
                        return Err(fail(format!(
                            "the json_schema scorer needs a schema: `expected` is {}; put a schema object in `expected` or set the gate param `schema`",
                            other.kind()
                        )));
                    }
                },
                ScorerKind::Numeric => {
                    Rule::Numeric(expected_number(&case.expected).ok_or_else(|| {
                        fail(format!(
                            "the numeric scorer needs `expected` to be a number, found {}",
                            case.expected.kind()
                        ))
                    })?)
                }
            };
            scorers.rules.push((rule, params.case_pass_for(kind)));
        }
        Ok(scorers)
    }

    /// Scores `output` as the answer to case number `index`.
    pub fn score(&mut self, index: usize, output: &str) -> Score {
        let Some((rule, pass)) = self.rules.get(index) else {
            return Score::MISSING;
        };
        let value =
            match rule {
                Rule::Exact(answers) => {
                    let output = output.trim();
                    hit(answers.iter().any(|a| a == output))
                }
                Rule::Normalized(answers) => {
                    let mine = &mut self.normalized_output;
                    self.normalizer.normalize_into(output, mine);
                    hit(answers.iter().any(|a| a == mine))
                }
                Rule::TokenF1(answers) => {
                    let mine = &mut self.normalized_output;
                    self.normalizer.normalize_into(output, mine);
                    let n = &mut self.normalizer;
                    answers
                        .iter()
                        .map(|a| n.normalized_f1(mine, a))
                        .fold(0.0, f64::max)
                }
                Rule::Regex(regex) => hit(self.regexes[*regex].is_match(output.trim())),
                Rule::JsonSchema(schema) => hit(parse_json_answer(output)
                    .is_ok_and(|v| self.schemas[*schema].validate(&v).is_ok())),
                Rule::Numeric(expected) => hit(first_number(output).is_some_and(|got| {
                    (got - expected).abs() <= self.abs_tol + self.rel_tol * expected.abs()
                })),
            };
        Score {
            value,
            passed: value >= *pass,
        }
    }

    /// Why `output` is wrong for case `index`, when the score alone does not
    /// say: the schema violation, the number read.
    pub fn explain(&self, index: usize, output: &str) -> Option<String> {
        match &self.rules.get(index)?.0 {
            Rule::JsonSchema(schema) => match parse_json_answer(output) {
                Err(e) => Some(format!("not JSON: {e}")),
                Ok(value) => self.schemas[*schema].validate(&value).err(),
            },
            Rule::Numeric(expected) => Some(match first_number(output) {
                None => "no number in the output".to_string(),
                Some(got) => format!(
                    "read {got}, off by {}; allowed {}",
                    (got - expected).abs(),
                    self.abs_tol + self.rel_tol * expected.abs()
                ),
            }),
            _ => None,
        }
    }

    fn normalize_all(&mut self, answers: RightAnswers<'a>) -> RightAnswers<'a> {
        RightAnswers {
            first: self.normalize_one(answers.first),
            others: answers
                .others
                .into_iter()
                .map(|a| self.normalize_one(a))
                .collect(),
        }
    }

    /// `answer` normalised; kept as it is when already normal (a label such
    /// as "billing"), which saves a copy per case.
    fn normalize_one(&mut self, answer: Cow<'a, str>) -> Cow<'a, str> {
        let normal = &mut self.normalized_output;
        self.normalizer.normalize_into(&answer, normal);
        if *normal == *answer {
            answer
        } else {
            Cow::Owned(normal.clone())
        }
    }

    /// Distinct regexes compiled, for tests of the cache.
    pub fn compiled_regexes(&self) -> usize {
        self.regexes.len()
    }
}

fn hit(right: bool) -> f64 {
    if right { 1.0 } else { 0.0 }
}

/// The output as JSON, without a Markdown code fence around it: chat models
/// often fence JSON they were asked to return bare.
fn parse_json_answer(output: &str) -> Result<Value, serde_json::Error> {
    let mut text = output.trim();
    if let Some(fenced) = text.strip_prefix("```")
        && let Some(body) = fenced.strip_suffix("```")
    {
        // Drop the info string (`json`) on the opening line.
        text = body.split_once('\n').map_or(body, |(_, rest)| rest).trim();
    }
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn case(id: &str, expected: Value, scorer: Option<&str>) -> Case<'static> {
        Case {
            id: Cow::Owned(id.to_string()),
            input: Cow::Borrowed("input"),
            expected: Expected::from(expected),
            tags: Vec::new(),
            scorer: scorer.map(|s| Cow::Owned(s.to_string())),
        }
    }

    fn params(extra: &str) -> Params {
        gatehouse_plugin_sdk::params::parse::<Params>(&format!(
            r#"{{"dataset": "attachment:g.jsonl", "threshold": 0.5{extra}}}"#
        ))
        .expect("valid params")
    }

    fn score_one(extra: &str, expected: Value, scorer: Option<&str>, output: &str) -> Score {
        let cases = [case("c1", expected, scorer)];
        let params = params(extra);
        let mut scorers = Scorers::prepare(&params, "g.jsonl", &cases).expect("prepares");
        scorers.score(0, output)
    }

    #[test]
    fn exact_compares_trimmed_text_and_accepts_alternatives() {
        assert!(score_one("", json!("billing"), None, " billing\n").passed);
        assert!(!score_one("", json!("billing"), None, "Billing").passed);
        assert!(score_one("", json!(["outage", "incident"]), None, "incident").passed);
        assert!(score_one("", json!(42), None, "42").passed);
    }

    #[test]
    fn normalized_ignores_case_punctuation_and_articles() {
        let s = score_one(
            "",
            json!("Denver Broncos"),
            Some("normalized"),
            "The Denver Broncos.",
        );
        assert_eq!(
            s,
            Score {
                value: 1.0,
                passed: true
            }
        );
        assert!(!score_one("", json!("billing"), Some("normalized"), "account").passed);
    }

    #[test]
    fn token_f1_passes_at_half_by_default_and_takes_the_best_reference() {
        let partial = score_one("", json!("Denver Broncos"), Some("token_f1"), "Denver");
        assert!((partial.value - 2.0 / 3.0).abs() < 1e-12);
        assert!(partial.passed, "0.67 reaches the default 0.5");
        let strict = score_one(
            r#", "case_pass": 0.8"#,
            json!("Denver Broncos"),
            Some("token_f1"),
            "Denver",
        );
        assert!(!strict.passed);
        let best = score_one(
            "",
            json!(["Carolina", "Denver Broncos"]),
            Some("token_f1"),
            "Broncos",
        );
        assert!((best.value - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn regex_must_match_the_whole_trimmed_output() {
        assert!(score_one("", json!("INC-\\d{4}"), Some("regex"), "INC-1234\n").passed);
        assert!(!score_one("", json!("INC-\\d{4}"), Some("regex"), "see INC-1234").passed);
        assert!(
            score_one("", json!("a|b"), Some("regex"), "b").passed,
            "alternation stays inside the anchors"
        );
    }

    #[test]
    fn each_distinct_pattern_is_compiled_once() {
        let cases: Vec<Case> = (0..50)
            .map(|i| {
                case(
                    &format!("c{i}"),
                    json!(if i % 2 == 0 { "x+" } else { "y+" }),
                    Some("regex"),
                )
            })
            .collect();
        let params = params("");
        let scorers = Scorers::prepare(&params, "g.jsonl", &cases).expect("prepares");
        assert_eq!(scorers.compiled_regexes(), 2);
    }

    #[test]
    fn invalid_regex_is_an_error_naming_the_case() {
        let cases = [
            case("ok", json!("a"), Some("regex")),
            case("t-7", json!("(unclosed"), Some("regex")),
        ];
        let err = Scorers::prepare(&params(""), "golden.jsonl", &cases).unwrap_err();
        assert!(
            err.starts_with("golden.jsonl: case \"t-7\": invalid regex"),
            "{err}"
        );
    }

    #[test]
    fn json_schema_validates_parsed_output_against_case_or_params_schema() {
        let schema = json!({"type": "object", "required": ["label"], "properties": {"label": {"enum": ["billing", "outage"]}}});
        assert!(
            score_one(
                "",
                schema.clone(),
                Some("json_schema"),
                r#"{"label": "billing"}"#
            )
            .passed
        );
        assert!(
            score_one(
                "",
                schema.clone(),
                Some("json_schema"),
                "```json\n{\"label\": \"outage\"}\n```"
            )
            .passed
        );
        assert!(
            !score_one(
                "",
                schema.clone(),
                Some("json_schema"),
                r#"{"label": "other"}"#
            )
            .passed
        );
        assert!(!score_one("", schema.clone(), Some("json_schema"), "billing").passed);
        let from_params = format!(r#", "schema": {schema}, "scorer": "json_schema""#);
        assert!(score_one(&from_params, Value::Null, None, r#"{"label": "outage"}"#).passed);
        let cases = [case("t-3", Value::Null, Some("json_schema"))];
        let err = Scorers::prepare(&params(""), "g.jsonl", &cases).unwrap_err();
        assert!(
            err.contains("case \"t-3\"") && err.contains("gate param `schema`"),
            "{err}"
        );
    }

    #[test]
    fn schema_failures_are_explained() {
        let cases = [case(
            "c",
            json!({"required": ["label"]}),
            Some("json_schema"),
        )];
        let scorers = Scorers::prepare(&params(""), "g.jsonl", &cases).expect("prepares");
        let why = scorers.explain(0, "{}").expect("explained");
        assert!(why.contains("missing required property \"label\""), "{why}");
        let why = scorers.explain(0, "label: x").expect("explained");
        assert!(why.starts_with("not JSON"), "{why}");
    }

    #[test]
    fn numeric_passes_within_absolute_plus_relative_tolerance() {
        let tol = r#", "abs_tol": 0.5, "rel_tol": 0.01"#;
        // Allowed: 0.5 + 0.01 * 100 = 1.5.
        assert!(score_one(tol, json!(100), Some("numeric"), "about 101.4 USD").passed);
        assert!(!score_one(tol, json!(100), Some("numeric"), "101.6").passed);
        assert!(score_one("", json!("-2.5"), Some("numeric"), "-2.5").passed);
        assert!(!score_one("", json!(3), Some("numeric"), "three").passed);
        let cases = [case("n", json!("lots"), Some("numeric"))];
        let err = Scorers::prepare(&params(""), "g.jsonl", &cases).unwrap_err();
        assert!(
            err.contains("case \"n\"") && err.contains("needs `expected` to be a number"),
            "{err}"
        );
    }

    #[test]
    fn unknown_case_scorer_and_unreadable_expected_are_named() {
        let cases = [case("t-1", json!("x"), Some("bleu"))];
        let err = Scorers::prepare(&params(""), "g.jsonl", &cases).unwrap_err();
        assert!(
            err.contains("case \"t-1\": unknown scorer \"bleu\""),
            "{err}"
        );
        let cases = [case("t-2", json!({"label": "x"}), None)];
        let err = Scorers::prepare(&params(""), "g.jsonl", &cases).unwrap_err();
        assert!(
            err.contains("case \"t-2\"") && err.contains("an object"),
            "{err}"
        );
        let cases = [case("t-4", json!([]), None)];
        assert!(Scorers::prepare(&params(""), "g.jsonl", &cases).is_err());
    }
}
