//! Answer normalisation and token F1 exactly as the SQuAD v1.1 official
//! evaluation script defines them, so scores here match published ones.
//!
//! `normalize_answer` lowercases, removes ASCII punctuation (Python's
//! `string.punctuation`), replaces the words `a`, `an` and `the` by a space
//! (whole words, `\b` boundaries over Unicode letters, digits and `_`, as
//! Python's `re` does), then collapses whitespace. F1 is over the bags of
//! normalised tokens: the common count is the Counter intersection (the sum of
//! each token's smaller count). As in v1.1 (unlike v2.0), an empty answer
//! scores 0 even against an empty reference.
//!
//! Scoring runs once per case on datasets of thousands, so a [`Normalizer`]
//! keeps its buffers between calls instead of allocating for each answer.

/// Reusable buffers for normalising answers.
#[derive(Debug, Default)]
pub struct Normalizer {
    lowered: String,
    without_articles: String,
    left: String,
    right: String,
    left_tokens: Vec<(usize, usize)>,
    right_tokens: Vec<(usize, usize)>,
}

impl Normalizer {
    /// `normalize_answer(a) == normalize_answer(b)`: SQuAD's exact match.
    pub fn exact_match(&mut self, a: &str, b: &str) -> bool {
        let mut left = std::mem::take(&mut self.left);
        let mut right = std::mem::take(&mut self.right);
        self.normalize_into(a, &mut left);
        self.normalize_into(b, &mut right);
        let same = left == right;
        self.left = left;
        self.right = right;
        same
    }

    /// SQuAD's token F1 of `prediction` against `reference`, in 0..=1.
    pub fn f1(&mut self, prediction: &str, reference: &str) -> f64 {
        let mut left = std::mem::take(&mut self.left);
        let mut right = std::mem::take(&mut self.right);
        self.normalize_into(prediction, &mut left);
        self.normalize_into(reference, &mut right);
        let score = self.normalized_f1(&left, &right);
        self.left = left;
        self.right = right;
        score
    }

    /// Token F1 of two answers already normalised (see
    /// [`Normalizer::normalize_into`]), so a reference used for many
    /// predictions is normalised once.
    pub fn normalized_f1(&mut self, prediction: &str, reference: &str) -> f64 {
        tokens(prediction, &mut self.left_tokens);
        tokens(reference, &mut self.right_tokens);
        let common = common_count(
            prediction,
            &mut self.left_tokens,
            reference,
            &mut self.right_tokens,
        );
        if common == 0 {
            return 0.0;
        }
        let precision = common as f64 / self.left_tokens.len() as f64;
        let recall = common as f64 / self.right_tokens.len() as f64;
        2.0 * precision * recall / (precision + recall)
    }

    /// SQuAD's `normalize_answer(text)`, written into `out`.
    pub fn normalize_into(&mut self, text: &str, out: &mut String) {
        self.lowered.clear();
        for c in text.chars() {
            if c.is_ascii() {
                if !c.is_ascii_punctuation() {
                    self.lowered.push(c.to_ascii_lowercase());
                }
            } else {
                // Python lowercases before removing punctuation; a
                // lowercased non-ASCII letter is never ASCII punctuation.
                self.lowered.extend(c.to_lowercase());
            }
        }
        self.without_articles.clear();
        let mut rest = self.lowered.as_str();
        while let Some(c) = rest.chars().next() {
            let run = if is_word(c) {
                rest.find(|c: char| !is_word(c)).unwrap_or(rest.len())
            } else {
                rest.find(is_word).unwrap_or(rest.len())
            };
            let (piece, tail) = rest.split_at(run);
            if matches!(piece, "a" | "an" | "the") {
                self.without_articles.push(' ');
            } else {
                self.without_articles.push_str(piece);
            }
            rest = tail;
        }
        out.clear();
        for word in self.without_articles.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }

    /// `normalize_answer(text)` as a new string, for tests and messages.
    pub fn normalize(&mut self, text: &str) -> String {
        let mut out = String::new();
        self.normalize_into(text, &mut out);
        out
    }
}

/// Python's `\w` for `str` patterns: Unicode letters and digits, and `_`.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Byte ranges of the space-separated tokens of a normalised string.
fn tokens(text: &str, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b' ' {
            out.push((start, i));
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
}

fn word(text: &str, (start, end): (usize, usize)) -> &str {
    &text[start..end]
}

/// Size of the multiset intersection of two token lists (Python's
/// `sum((Counter(a) & Counter(b)).values())`), by sorting both and merging.
fn common_count(
    left: &str,
    left_tokens: &mut [(usize, usize)],
    right: &str,
    right_tokens: &mut [(usize, usize)],
) -> usize {
    left_tokens.sort_unstable_by(|a, b| word(left, *a).cmp(word(left, *b)));
    right_tokens.sort_unstable_by(|a, b| word(right, *a).cmp(word(right, *b)));
    let (mut i, mut j, mut common) = (0, 0, 0);
    while i < left_tokens.len() && j < right_tokens.len() {
        match word(left, left_tokens[i]).cmp(word(right, right_tokens[j])) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn normalisation_drops_case_punctuation_articles_and_extra_space() {
        let mut n = Normalizer::default();
        assert_eq!(n.normalize("The Denver Broncos"), "denver broncos");
        assert_eq!(n.normalize("  Denver   Broncos. "), "denver broncos");
        assert_eq!(n.normalize("A cat, an owl & the dog!"), "cat owl dog");
        assert_eq!(n.normalize("Saint-Étienne's"), "saintétiennes");
        assert_eq!(n.normalize("the"), "");
    }

    #[test]
    fn articles_are_removed_only_as_whole_words() {
        let mut n = Normalizer::default();
        assert_eq!(n.normalize("theatre another an"), "theatre another");
        assert_eq!(n.normalize("the1 another1"), "the1 another1");
        // `_` is punctuation too, so "a_" is the article by the time it is seen.
        assert_eq!(n.normalize("THE_END a_"), "theend");
        // Punctuation goes first, so "the." and "(a)" are whole words by then.
        assert_eq!(n.normalize("in (a) the."), "in");
        // Non-ASCII punctuation is kept and bounds a word, as `\b` does.
        assert_eq!(n.normalize("«the»"), "« »");
    }

    #[test]
    fn exact_match_after_normalisation_like_squad() {
        let mut n = Normalizer::default();
        assert!(n.exact_match("The Denver Broncos", "Denver Broncos"));
        assert!(n.exact_match("denver broncos!", "Denver Broncos"));
        assert!(!n.exact_match("Denver", "Denver Broncos"));
        assert!(n.exact_match("", "the"));
    }

    #[test]
    fn f1_of_partial_overlaps_matches_hand_computation() {
        let mut n = Normalizer::default();
        assert!(close(n.f1("The Denver Broncos", "Denver Broncos"), 1.0));
        // prediction {denver}, reference {denver, broncos}: p=1, r=1/2.
        assert!(close(n.f1("Denver", "Denver Broncos"), 2.0 / 3.0));
        // 2 common of 4 predicted and 3 reference tokens: p=1/2, r=2/3.
        assert!(close(
            n.f1("Denver Broncos football team", "the Broncos of Denver"),
            4.0 / 7.0
        ));
        assert!(close(n.f1("Carolina Panthers", "Denver Broncos"), 0.0));
    }

    #[test]
    fn f1_intersects_token_counts_like_a_counter() {
        let mut n = Normalizer::default();
        // Counter(a a b) & Counter(a c) = {a: 1}: p=1/3, r=1/2, F1=0.4.
        assert!(close(n.f1("a a b", "a c"), 0.0), "articles go first");
        assert!(close(n.f1("x x y", "x z"), 0.4));
        assert!(close(n.f1("x x", "x x x"), 0.8));
    }

    #[test]
    fn empty_answers_score_zero_as_in_squad_v1_1() {
        let mut n = Normalizer::default();
        assert_eq!(n.f1("", ""), 0.0);
        assert_eq!(n.f1("the", "Denver"), 0.0);
        assert_eq!(n.f1("Denver", ""), 0.0);
    }

    #[test]
    fn buffers_are_reused_without_leaking_between_calls() {
        let mut n = Normalizer::default();
        assert!(close(
            n.f1("long answer with many words", "answer"),
            2.0 / 6.0
        ));
        assert!(close(n.f1("answer", "answer"), 1.0));
        assert!(!n.exact_match("long answer", "answer"));
        assert!(n.exact_match("Answer", "answer"));
    }
}
