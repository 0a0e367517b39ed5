//! What the candidate answered to each case, whether read from outputs CI
//! attached or asked of its model live, matched to cases by id.
//!
//! Rules: a case without an answer is `Missing` (attached mode) or `Failed`
//! (its live request failed); both score 0 and are counted apart, so a
//! verdict can tell "CI forgot outputs" from "the endpoint is down". Data
//! directory paths are refused up front by a build that does not ask for
//! `files`, with the fix, rather than failing later as an unreadable file.

use std::collections::HashMap;

use gatehouse_plugin_sdk::golden::{self, borrowed::Case, borrowed::Output};

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
        let mut matched = 0;
        let per_case: Vec<Answer<'a>> = by_case(cases, outputs)
            .into_iter()
            .map(|output| match output {
                Some(output) => {
                    matched += 1;
                    Answer::Given(&output.output)
                }
                None => Answer::Missing,
            })
            .collect();
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
pub fn by_case<'o, 'a>(cases: &[Case], outputs: &'o [Output<'a>]) -> Vec<Option<&'o Output<'a>>> {
    let mut index: Option<HashMap<&str, &Output>> = None;
    cases
        .iter()
        .enumerate()
        .map(|(position, case)| match outputs.get(position) {
            Some(output) if output.id == case.id => Some(output),
            _ => index
                .get_or_insert_with(|| outputs.iter().map(|o| (&*o.id, o)).collect())
                .get(&*case.id)
                .copied(),
        })
        .collect()
}

/// The golden cases in `bytes`, read from `source`.
pub fn cases<'a>(source: &str, bytes: &'a [u8]) -> Result<Vec<Case<'a>>, String> {
    golden::parse_cases(source, bytes)
}

/// The outputs in `bytes`, read from `source`, in the file's order; an id
/// given twice is an error.
pub fn outputs<'a>(
    source: &str,
    bytes: &'a [u8],
    cases: &[Case],
) -> Result<Vec<Output<'a>>, String> {
    let outputs = golden::parse_outputs_unchecked(source, bytes)?;
    // Case ids are unique, so outputs that each sit at their case's position
    // are too; only others need the set that finds a repeated id.
    let in_place = outputs.len() <= cases.len()
        && outputs
            .iter()
            .zip(cases)
            .all(|(output, case)| output.id == case.id);
    if !in_place {
        golden::check_outputs(source, outputs.iter().map(|output| &*output.id))?;
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use gatehouse_plugin_sdk::attachments::Owner;
    use gatehouse_plugin_sdk::golden::borrowed::Expected;
    use gatehouse_plugin_sdk::testing;

    use super::*;
    use gatehouse_plugin_sdk::data;

    fn case(id: &str) -> Case<'_> {
        Case {
            id: Cow::Borrowed(id),
            input: Cow::Borrowed(""),
            expected: Expected::Text(Cow::Borrowed("x")),
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
        let cases = [case("a"), case("b")];
        let source = "attachment:outputs.jsonl";
        let bytes = data::read(source).expect("reads");
        let outputs = outputs(source, &bytes, &cases).expect("parses");
        let answers = Answers::attached(&cases, &outputs);
        assert_eq!(answers.per_case, [Answer::Missing, Answer::Given("B")]);
        assert_eq!(answers.unmatched, 1);
    }

    #[test]
    fn an_output_given_twice_is_refused_wherever_it_sits() {
        let cases = [case("a"), case("b"), case("c")];
        let in_place = b"{\"id\":\"a\",\"output\":\"A\"}\n{\"id\":\"b\",\"output\":\"B\"}\n";
        assert_eq!(outputs("o.jsonl", in_place, &cases).map(|o| o.len()), Ok(2));
        let files: [&[u8]; 3] = [
            b"{\"id\":\"a\",\"output\":\"A\"}\n{\"id\":\"a\",\"output\":\"B\"}\n",
            b"{\"id\":\"c\",\"output\":\"C\"}\n{\"id\":\"b\",\"output\":\"B\"}\n{\"id\":\"c\",\"output\":\"A\"}\n",
            b"{\"id\":\"a\",\"output\":\"A\"}\n{\"id\":\"b\",\"output\":\"B\"}\n{\"id\":\"c\",\"output\":\"C\"}\n{\"id\":\"b\",\"output\":\"B\"}\n",
        ];
        for (file, id) in files.into_iter().zip(["a", "c", "b"]) {
            let err = outputs("o.jsonl", file, &cases).unwrap_err();
            assert_eq!(
                err,
                format!("o.jsonl: output for case {id:?} appears twice")
            );
        }
    }

    #[test]
    fn outputs_pair_by_position_or_else_by_id() {
        let output = |id: &'static str| Output {
            id: Cow::Borrowed(id),
            output: Cow::Owned(id.to_uppercase()),
            latency_ms: None,
            input_tokens: None,
            output_tokens: None,
        };
        let cases = [case("a"), case("b"), case("c"), case("d")];
        let outputs = [output("a"), output("c"), output("b")];
        let ids: Vec<Option<&str>> = by_case(&cases, &outputs)
            .into_iter()
            .map(|o| o.map(|o| &*o.id))
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

    #[cfg(feature = "files")]
    #[test]
    fn data_directory_paths_are_read_in_the_files_build() {
        let dir = std::env::temp_dir().join(format!("golden-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("golden.jsonl");
        std::fs::write(&path, "{\"id\":\"1\",\"input\":\"i\",\"expected\":\"x\"}\n")
            .expect("written");
        let source = path.to_string_lossy();
        let bytes = data::read(&source).expect("reads");
        let cases = cases(&source, &bytes).expect("parses");
        assert_eq!(cases.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
