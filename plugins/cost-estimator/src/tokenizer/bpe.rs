//! Byte-pair encoding with OpenAI's published token tables: the token count
//! tiktoken gives for the same text, computed in the sandbox.
//!
//! Text is split into pieces by the encoding's own pattern (a word with its
//! leading space, up to three digits, a run of punctuation, whitespace), then
//! each piece's bytes are merged pairwise, the pair of lowest rank first,
//! until no adjacent pair is a token; the parts left are the tokens. The
//! tables come from `build.rs` and are read in place, and each pattern is
//! compiled at most once per call, so counting starts without a set-up cost
//! worth the name.

use std::cmp::Ordering;
use std::sync::OnceLock;

use fancy_regex::Regex;

/// One of OpenAI's encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, GPT-4.5, GPT-5 and the o-series.
    O200kBase,
    /// GPT-4 and GPT-3.5 Turbo, and OpenAI's embedding models.
    Cl100kBase,
}

// The patterns are tiktoken's (`tiktoken_ext/openai_public.py`), verbatim:
// a different split gives different counts.
const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+(?!\S)",
    r"|\s+",
);
const CL100K_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";

static O200K_TABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.tokens"));
static CL100K_TABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cl100k_base.tokens"));

static O200K_REGEX: OnceLock<Result<Regex, String>> = OnceLock::new();
static CL100K_REGEX: OnceLock<Result<Regex, String>> = OnceLock::new();

impl Encoding {
    /// tiktoken's name for the encoding.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    /// Tokens in `text`, as tiktoken's `encode_ordinary` counts them
    /// (special tokens such as `<|endoftext|>` are plain text here).
    pub fn count(self, text: &str) -> Result<u64, String> {
        let regex = self.regex()?;
        let table = self.table();
        let mut tokens = 0u64;
        for piece in regex.find_iter(text) {
            let piece = piece.map_err(|e| {
                format!(
                    "the {} tokenizer cannot split the text into pieces ({e}); shorten the runs of repeated characters in it",
                    self.name()
                )
            })?;
            tokens += table.count_piece(piece.as_str().as_bytes());
        }
        Ok(tokens)
    }

    fn table(self) -> Table {
        Table(match self {
            Encoding::O200kBase => O200K_TABLE,
            Encoding::Cl100kBase => CL100K_TABLE,
        })
    }

    fn regex(self) -> Result<&'static Regex, String> {
        let (cell, pattern) = match self {
            Encoding::O200kBase => (&O200K_REGEX, O200K_PATTERN),
            Encoding::Cl100kBase => (&CL100K_REGEX, CL100K_PATTERN),
        };
        cell.get_or_init(|| Regex::new(pattern).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| format!("the {} pattern does not compile: {e}", self.name()))
    }
}

/// A token table as `build.rs` lays it out: count, offsets by rank, ranks
/// sorted by bytes, bytes. Built by this crate, so its shape is trusted.
#[derive(Clone, Copy)]
struct Table(&'static [u8]);

impl Table {
    fn word(self, index: usize) -> usize {
        let at = index * 4;
        let mut word = [0; 4];
        word.copy_from_slice(&self.0[at..at + 4]);
        u32::from_le_bytes(word) as usize
    }

    fn len(self) -> usize {
        self.word(0)
    }

    fn token(self, rank: usize) -> &'static [u8] {
        let bytes = 4 * (2 * self.len() + 2);
        &self.0[bytes + self.word(1 + rank)..bytes + self.word(2 + rank)]
    }

    /// The rank of the token spelt `bytes`, by binary search over the
    /// tokens sorted by their bytes.
    fn rank(self, bytes: &[u8]) -> Option<u32> {
        let sorted = self.len() + 2;
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = (low + high) / 2;
            let rank = self.word(sorted + middle);
            match self.token(rank).cmp(bytes) {
                Ordering::Less => low = middle + 1,
                Ordering::Greater => high = middle,
                Ordering::Equal => return Some(rank as u32),
            }
        }
        None
    }

    /// Tokens in one piece: merge the adjacent pair of lowest rank until no
    /// pair is a token. Every single byte is a token, so this always ends.
    fn count_piece(self, piece: &[u8]) -> u64 {
        if piece.len() <= 1 || self.rank(piece).is_some() {
            return piece.len().min(1) as u64;
        }
        // Boundaries between parts, each with the rank of the pair that
        // starts there (`u32::MAX`: not a token).
        let mut parts: Vec<(usize, u32)> = (0..=piece.len()).map(|i| (i, u32::MAX)).collect();
        let pair_rank = |parts: &[(usize, u32)], i: usize| {
            parts
                .get(i + 2)
                .and_then(|end| self.rank(&piece[parts[i].0..end.0]))
                .unwrap_or(u32::MAX)
        };
        for i in 0..parts.len() {
            parts[i].1 = pair_rank(&parts, i);
        }
        loop {
            // The leftmost of equal ranks merges first, as in tiktoken.
            let mut lowest = (usize::MAX, u32::MAX);
            for (i, &(_, rank)) in parts.iter().enumerate() {
                if rank < lowest.1 {
                    lowest = (i, rank);
                }
            }
            let (i, rank) = lowest;
            if rank == u32::MAX {
                break;
            }
            parts.remove(i + 1);
            parts[i].1 = pair_rank(&parts, i);
            if i > 0 {
                parts[i - 1].1 = pair_rank(&parts, i - 1);
            }
        }
        (parts.len() - 1) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings with their token counts from OpenAI's `tiktoken` 0.14 for
    /// Python (`len(get_encoding(name).encode_ordinary(text))`), run on the
    /// encodings' published files (sha256 as tiktoken expects).
    const REFERENCE: &[(&str, u64, u64)] = &[
        // (text, cl100k_base, o200k_base)
        ("hello world", 2, 2),
        ("Hello, world!", 4, 4),
        ("tiktoken is great!", 6, 6),
        (
            "I was charged twice for my subscription this month.",
            10,
            10,
        ),
        (
            "You triage customer support tickets. Answer with one label from: billing, outage, account, feature-request, other.\n\nTicket:\n",
            26,
            26,
        ),
        ("   leading and  double  spaces  \n\n", 8, 8),
        ("naïve café — 東京 2024-05-13 12345678", 19, 17),
        ("don't I'LL we've", 7, 4),
        ("", 0, 0),
        ("billing", 1, 1),
        ("feature-request", 2, 2),
        ("Ünïcödé ÆØÅ ğüşıöç Привет мир 😀👍🏽", 31, 21),
        ("x = 1\n\tif x:\n\t\treturn 'ok'\r\n", 13, 13),
    ];

    #[test]
    fn counts_match_tiktoken_reference_values() {
        for &(text, cl100k, o200k) in REFERENCE {
            assert_eq!(Encoding::Cl100kBase.count(text), Ok(cl100k), "{text:?}");
            assert_eq!(Encoding::O200kBase.count(text), Ok(o200k), "{text:?}");
        }
    }

    mod corpus {
        include!("corpus.rs");
    }

    // (cl100k_base, o200k_base) counts of each corpus text, by tiktoken-rs,
    // computed by the build script.
    include!(concat!(env!("OUT_DIR"), "/reference_counts.rs"));

    #[test]
    fn counts_match_tiktoken_rs_token_for_token_on_a_varied_corpus() {
        let texts = corpus::corpus();
        assert_eq!(texts.len(), TIKTOKEN_RS_COUNTS.len());
        for (text, &(cl100k, o200k)) in texts.iter().zip(TIKTOKEN_RS_COUNTS) {
            assert_eq!(Encoding::O200kBase.count(text), Ok(o200k), "{text:?}");
            assert_eq!(Encoding::Cl100kBase.count(text), Ok(cl100k), "{text:?}");
        }
    }

    #[test]
    fn tables_hold_every_token_in_rank_and_byte_order() {
        for (encoding, tokens) in [
            (Encoding::O200kBase, 199_998),
            (Encoding::Cl100kBase, 100_256),
        ] {
            let table = encoding.table();
            assert_eq!(table.len(), tokens, "{}", encoding.name());
            for rank in [0, 1, 255, 256, 1000, tokens / 2, tokens - 1] {
                assert_eq!(table.rank(table.token(rank)), Some(rank as u32));
            }
            assert_eq!(table.rank(b"not a single token, surely"), None);
        }
    }
}
