//! Tokens a configuration's requests use on the golden dataset.
//!
//! Each case is one request. Its input is the configuration's
//! `prompt_template` with `{{input}}` replaced by the case's input (a
//! template without the placeholder is counted with the input after it, as
//! chat APIs send it in a message of its own; no template, the input alone).
//! Its output is the configuration's answer from the outputs file when one
//! is given and has the case, using the provider's reported `output_tokens`
//! when present; otherwise the case's `expected` answer (a string as it is,
//! any other JSON as written). Expected answers price what a right answer
//! costs, not what the model writes: attach outputs for configurations that
//! reason at length before answering. Chat formatting adds a few tokens per
//! message that are not counted.

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::golden::{Case, Output};
use gatehouse_plugin_sdk::json_kind;
use serde_json::Value;

use crate::tokenizer::Tokenizer;

/// The placeholder a prompt template holds for the case's input.
pub const INPUT_PLACEHOLDER: &str = "{{input}}";

/// One request's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

/// Where the output counts came from, case by case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputSources {
    /// Outputs whose `output_tokens` the provider reported.
    pub reported: usize,
    /// Outputs counted with the tokenizer.
    pub counted: usize,
    /// Cases without an output: their expected answer, counted.
    pub expected: usize,
}

impl OutputSources {
    /// "output tokens from 3 outputs (2 as reported by the provider) and 1 expected answer".
    pub fn describe(&self) -> String {
        let outputs = self.reported + self.counted;
        let expected = plural(self.expected, "expected answer", "expected answers");
        match (outputs, self.expected) {
            (0, _) => format!("output tokens from {expected}"),
            (n, e) => {
                let mut text = format!("output tokens from {}", plural(n, "output", "outputs"));
                if self.reported > 0 {
                    text.push_str(&format!(" ({} as reported by the provider)", self.reported));
                }
                if e > 0 {
                    text.push_str(&format!(" and {expected}"));
                }
                text
            }
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A configuration's requests on the dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// One per case, in the dataset's order.
    pub requests: Vec<Tokens>,
    pub tokenizer: Tokenizer,
    pub outputs: OutputSources,
}

/// `template` with every `{{input}}` replaced by `input`.
pub fn fill(template: &str, input: &str) -> String {
    if template.contains(INPUT_PLACEHOLDER) {
        template.replace(INPUT_PLACEHOLDER, input)
    } else if template.is_empty() {
        input.to_string()
    } else {
        format!("{template}\n{input}")
    }
}

/// Counts `config`'s tokens on each case; `outputs` are its answers by case
/// id, when attached. `role` names the configuration in messages.
pub fn usage(
    config: &Value,
    cases: &[Case],
    outputs: Option<&BTreeMap<String, Output>>,
    role: &str,
) -> Result<Usage, String> {
    let tokenizer = Tokenizer::for_config(config, role)?;
    let template = match config.get("prompt_template") {
        None | Some(Value::Null) => "",
        Some(Value::String(template)) => template.as_str(),
        Some(other) => {
            return Err(format!(
                "`prompt_template` in the {role} must be a string, found {}; write the prompt with {INPUT_PLACEHOLDER} where the case's input goes",
                json_kind(other)
            ));
        }
    };
    let mut sources = OutputSources::default();
    let mut requests = Vec::with_capacity(cases.len());
    for case in cases {
        let count = |text: &str| {
            tokenizer
                .count(text)
                .map_err(|e| format!("case {:?} for the {role}: {e}", case.id))
        };
        let input = count(&fill(template, &case.input))?;
        let output = match outputs.and_then(|o| o.get(&case.id)) {
            Some(Output {
                output_tokens: Some(tokens),
                ..
            }) => {
                sources.reported += 1;
                *tokens
            }
            Some(answer) => {
                sources.counted += 1;
                count(&answer.output)?
            }
            None => {
                sources.expected += 1;
                count(&expected_text(&case.expected))?
            }
        };
        requests.push(Tokens { input, output });
    }
    Ok(Usage {
        requests,
        tokenizer,
        outputs: sources,
    })
}

/// The expected answer as the model would write it: a string as it is,
/// other JSON as written.
fn expected_text(expected: &Value) -> String {
    match expected {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn case(id: &str, input: &str, expected: Value) -> Case {
        Case {
            id: id.to_string(),
            input: input.to_string(),
            expected,
            tags: Vec::new(),
            scorer: None,
        }
    }

    fn output(id: &str, text: &str, tokens: Option<u64>) -> Output {
        Output {
            id: id.to_string(),
            output: text.to_string(),
            latency_ms: None,
            input_tokens: None,
            output_tokens: tokens,
        }
    }

    #[test]
    fn template_placeholder_is_replaced_by_the_input() {
        assert_eq!(
            fill("Ticket:\n{{input}}\nLabel:", "down"),
            "Ticket:\ndown\nLabel:"
        );
        assert_eq!(fill("{{input}} / {{input}}", "a"), "a / a");
        assert_eq!(
            fill("Classify the ticket.", "down"),
            "Classify the ticket.\ndown"
        );
        assert_eq!(fill("", "down"), "down");
    }

    #[test]
    fn openai_model_counts_filled_template_and_expected_answer_exactly() {
        let config = json!({ "model": "gpt-4o-mini", "prompt_template": "Ticket:\n{{input}}" });
        let cases = [case("1", "hello world", json!("billing"))];
        let usage = usage(&config, &cases, None, "candidate").expect("counted");
        // tiktoken (Python): "Ticket:\nhello world" is 4 tokens in o200k_base.
        assert_eq!(
            usage.requests,
            [Tokens {
                input: 4,
                output: 1
            }]
        );
        assert_eq!(usage.outputs.expected, 1);
    }

    #[test]
    fn outputs_replace_expected_answers_and_reported_counts_win() {
        let config = json!({ "model": "claude-3-5-haiku", "prompt_template": "{{input}}" });
        let cases = [
            case("1", "abcdefgh", json!("x")),
            case("2", "abcd", json!({"label": "outage"})),
            case("3", "a", json!("billing")),
        ];
        let outputs: BTreeMap<String, Output> = [
            ("1".to_string(), output("1", "sixteen chars!!!", None)),
            ("2".to_string(), output("2", "ignored text", Some(42))),
        ]
        .into_iter()
        .collect();
        let usage = usage(&config, &cases, Some(&outputs), "candidate").expect("counted");
        assert_eq!(usage.tokenizer, Tokenizer::Approximate);
        let outs: Vec<u64> = usage.requests.iter().map(|t| t.output).collect();
        assert_eq!(outs, [4, 42, 2]);
        assert_eq!(
            usage.outputs,
            OutputSources {
                reported: 1,
                counted: 1,
                expected: 1
            }
        );
        assert_eq!(
            usage.outputs.describe(),
            "output tokens from 2 outputs (1 as reported by the provider) and 1 expected answer"
        );
    }

    #[test]
    fn non_string_template_is_named() {
        let err = usage(&json!({ "prompt_template": 3 }), &[], None, "incumbent").unwrap_err();
        assert!(err.contains("`prompt_template` in the incumbent"), "{err}");
    }

    #[test]
    fn non_string_expected_answer_counts_as_written_json() {
        assert_eq!(expected_text(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(expected_text(&json!(3.5)), "3.5");
        assert_eq!(expected_text(&json!("plain")), "plain");
    }
}
