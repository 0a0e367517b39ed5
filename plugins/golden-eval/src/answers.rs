//! What the candidate answered to each case, whether read from outputs CI
//! attached or asked of its model live, matched to cases by id.
//!
//! Rules: a case without an answer is `Missing` (attached mode) or `Failed`
//! (its live request failed); both score 0 and are counted apart, so a
//! verdict can tell "CI forgot outputs" from "the endpoint is down". Data
//! directory paths are refused up front by a build that does not ask for
//! `files`, with the fix, rather than failing later as an unreadable file.

use std::collections::HashMap;

use gatehouse_plugin_sdk::golden::{self, Case, Output};

/// One case's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer<'a> {
    /// The output text.
    Given(&'a str),
    /// The attached outputs have none for this case.
    Missing,
    /// The live request for this case failed, with why.
    Failed(&'a str),
}

/// The answers to every case, in the dataset's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers<'a> {
    pub per_case: Vec<Answer<'a>>,
    /// Outputs whose id is no case of the dataset (a stale outputs file).
    pub unmatched: usize,
}

impl<'a> Answers<'a> {
    /// Matches attached `outputs` to `cases` by id.
    pub fn attached(cases: &[Case], outputs: &'a [Output]) -> Self {
        let per_case: Vec<Answer<'a>> = by_case(cases, outputs)
            .into_iter()
            .map(|output| match output {
                Some(output) => Answer::Given(&output.output),
                None => Answer::Missing,
            })
            .collect();
        let matched = per_case
            .iter()
            .filter(|a| matches!(a, Answer::Given(_)))
            .count();
        Answers {
            per_case,
            // Ids are unique on both sides, so each output matches at most once.
            unmatched: outputs.len() - matched,
        }
    }

    /// Answers from live requests, one per case in order.
    pub fn live(results: &'a [Result<String, String>]) -> Self {
        Answers {
            per_case: results
                .iter()
                .map(|r| match r {
                    Ok(text) => Answer::Given(text),
                    Err(why) => Answer::Failed(why),
                })
                .collect(),
            unmatched: 0,
        }
    }
}

/// Each case's output, if any. Outputs in the dataset's order (as CI
/// writes them) pair by position; only those out of place are looked up,
/// through an index built the first time one is.
pub fn by_case<'o>(cases: &[Case], outputs: &'o [Output]) -> Vec<Option<&'o Output>> {
    let mut index: Option<HashMap<&str, &Output>> = None;
    cases
        .iter()
        .enumerate()
        .map(|(position, case)| match outputs.get(position) {
            Some(output) if output.id == case.id => Some(output),
            _ => index
                .get_or_insert_with(|| outputs.iter().map(|o| (o.id.as_str(), o)).collect())
                .get(case.id.as_str())
                .copied(),
        })
        .collect()
}

/// Refuses a data directory path in a build that cannot open one.
pub fn check_source(param: &str, source: &str) -> Result<(), String> {
    if source.starts_with('/') && !cfg!(feature = "files") {
        return Err(format!(
            "gate param `{param}` names {source:?}, a path in a data directory, but this build of golden-eval does not ask for `files`; attach the file and write \"attachment:NAME\", or use the plugin built with `--features files` and grant it the directory in its manifest"
        ));
    }
    Ok(())
}

/// The golden cases `source` names.
pub fn read_cases(source: &str) -> Result<Vec<Case>, String> {
    check_source("dataset", source)?;
    golden::read_cases(source)
}

/// The outputs `source` names, in the file's order.
pub fn read_outputs(param: &str, source: &str) -> Result<Vec<Output>, String> {
    check_source(param, source)?;
    golden::read_outputs_in_order(source)
}

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::attachments::Owner;
    use gatehouse_plugin_sdk::testing;
    use serde_json::json;

    use super::*;

    fn case(id: &str) -> Case {
        Case {
            id: id.to_string(),
            input: String::new(),
            expected: json!("x"),
            tags: Vec::new(),
            scorer: None,
        }
    }

    #[test]
    fn outputs_match_cases_by_id_and_strays_are_counted() {
        testing::attach(
            Owner::Candidate,
            "outputs.jsonl",
            "{\"id\":\"b\",\"output\":\"B\"}\n{\"id\":\"zz\",\"output\":\"stale\"}\n",
        );
        let outputs = read_outputs("outputs", "attachment:outputs.jsonl").expect("reads");
        let cases = [case("a"), case("b")];
        let answers = Answers::attached(&cases, &outputs);
        assert_eq!(answers.per_case, [Answer::Missing, Answer::Given("B")]);
        assert_eq!(answers.unmatched, 1);
    }

    #[test]
    fn outputs_pair_by_position_or_else_by_id() {
        let output = |id: &str| Output {
            id: id.to_string(),
            output: id.to_uppercase(),
            latency_ms: None,
            input_tokens: None,
            output_tokens: None,
        };
        let cases = [case("a"), case("b"), case("c"), case("d")];
        let outputs = [output("a"), output("c"), output("b")];
        let ids: Vec<Option<&str>> = by_case(&cases, &outputs)
            .into_iter()
            .map(|o| o.map(|o| o.id.as_str()))
            .collect();
        assert_eq!(ids, [Some("a"), Some("b"), Some("c"), None]);
    }

    #[test]
    fn live_failures_stay_with_their_case() {
        let results = [Ok("billing".to_string()), Err("HTTP 500".to_string())];
        let answers = Answers::live(&results);
        assert_eq!(
            answers.per_case,
            [Answer::Given("billing"), Answer::Failed("HTTP 500")]
        );
    }

    #[cfg(not(feature = "files"))]
    #[test]
    fn data_directory_paths_need_the_files_build() {
        let err = read_cases("/golden/triage.jsonl").unwrap_err();
        assert!(err.contains("gate param `dataset`"), "{err}");
        assert!(err.contains("--features files"), "{err}");
        assert!(check_source("outputs", "attachment:o.jsonl").is_ok());
    }

    #[cfg(feature = "files")]
    #[test]
    fn data_directory_paths_are_read_in_the_files_build() {
        let dir = std::env::temp_dir().join(format!("golden-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("golden.jsonl");
        std::fs::write(&path, "{\"id\":\"1\",\"input\":\"i\",\"expected\":\"x\"}\n")
            .expect("written");
        let cases = read_cases(&path.to_string_lossy()).expect("reads");
        assert_eq!(cases.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
