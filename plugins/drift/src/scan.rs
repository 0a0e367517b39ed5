//! The fast path of reading samples: a scanner for the shapes nearly every
//! file has, lines of flat objects of plain strings, numbers, booleans and
//! nulls, or one array of numbers; several times faster than a general
//! JSON parser.
//!
//! Rules: the scanner only ever accepts a line the general parser
//! ([`crate::records`]) would read the same way, and gives up on anything
//! else (nesting, escapes, non-ASCII or control characters in strings, a
//! value of a type that needs conversion or an error message, a feature
//! given twice, trailing text), leaving that line to the general parser.
//! Numbers are checked against JSON's grammar and converted exactly, as
//! `serde_json` does with `float_roundtrip`: by Clinger's fast path when
//! it applies, by the standard library's correctly rounded parser when not. Nothing is added to the columns until the whole line
//! has been scanned, so giving up midway changes nothing.

use crate::params::{Feature, Kind};

/// What the scanner made of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A record; its features' values are in `found`. `next` is where the
    /// next line starts.
    Record { next: usize },
    /// Only whitespace.
    Blank { next: usize },
    /// Not the common shape: read it with the general parser.
    Unusual,
}

/// A compared feature's value on the line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Found<'b> {
    Number(f64),
    Label(&'b str),
}

/// Scans the line starting at `start`, collecting into `found` the values
/// of `features` it holds, as (feature index, value).
pub fn line<'b>(
    bytes: &'b [u8],
    start: usize,
    features: &[Feature],
    found: &mut Vec<(usize, Found<'b>)>,
) -> Line {
    found.clear();
    let mut s = Scanner { bytes, pos: start };
    s.skip_space();
    match s.peek() {
        None => return Line::Blank { next: bytes.len() },
        Some(b'\n') => return Line::Blank { next: s.pos + 1 },
        Some(b'{') => s.pos += 1,
        Some(_) => return Line::Unusual,
    }
    if record(&mut s, features, found).is_none() {
        return Line::Unusual;
    }
    s.skip_space();
    match s.peek() {
        None => Line::Record { next: bytes.len() },
        Some(b'\n') => Line::Record { next: s.pos + 1 },
        Some(_) => Line::Unusual,
    }
}

/// The numbers of a file holding one JSON array of numbers, or `None`
/// when it holds anything else (left to `serde_json`, for its message).
pub fn numbers(bytes: &[u8]) -> Option<Vec<f64>> {
    let mut s = Scanner { bytes, pos: 0 };
    let mut values = Vec::new();
    s.skip_all_space();
    s.expect(b'[')?;
    s.skip_all_space();
    if !s.eat(b']') {
        loop {
            s.skip_all_space();
            values.push(s.number()?);
            s.skip_all_space();
            match s.next()? {
                b',' => continue,
                b']' => break,
                _ => return None,
            }
        }
    }
    s.skip_all_space();
    (s.pos == bytes.len()).then_some(values)
}

/// The members of an object whose `{` was consumed, through its `}`.
fn record<'b>(
    s: &mut Scanner<'b>,
    features: &[Feature],
    found: &mut Vec<(usize, Found<'b>)>,
) -> Option<()> {
    s.skip_space();
    if s.eat(b'}') {
        return Some(());
    }
    loop {
        s.skip_space();
        let key = s.string()?;
        s.skip_space();
        s.expect(b':')?;
        s.skip_space();
        match features.iter().position(|f| f.name.as_bytes() == key) {
            Some(index) => {
                if found.iter().any(|(i, _)| *i == index) {
                    return None;
                }
                if let Some(value) = s.value(features[index].kind())? {
                    found.push((index, value));
                }
            }
            None => s.skip_value()?,
        }
        s.skip_space();
        match s.next()? {
            b',' => continue,
            b'}' => return Some(()),
            _ => return None,
        }
    }
}

struct Scanner<'b> {
    bytes: &'b [u8],
    pos: usize,
}

impl<'b> Scanner<'b> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    /// JSON whitespace within a line (a newline ends the line).
    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Any JSON whitespace, newlines included.
    fn skip_all_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    /// A string of printable ASCII without escapes, without its quotes.
    fn string(&mut self) -> Option<&'b [u8]> {
        self.expect(b'"')?;
        let rest = &self.bytes[self.pos..];
        let len = rest
            .iter()
            .position(|&b| ENDS_PLAIN_STRING[usize::from(b)])?;
        if rest[len] != b'"' {
            return None;
        }
        self.pos += len + 1;
        Some(&rest[..len])
    }

    /// A compared feature's value; `Some(None)` for `null`, `None` when the
    /// line is unusual.
    fn value(&mut self, kind: Kind) -> Option<Option<Found<'b>>> {
        match (self.peek()?, kind) {
            (b'n', _) => self.literal(b"null").map(|()| None),
            (b'"', Kind::Categorical) => {
                let text = std::str::from_utf8(self.string()?).ok()?;
                Some(Some(Found::Label(text)))
            }
            (b'-' | b'0'..=b'9', Kind::Numeric) => self.number().map(|v| Some(Found::Number(v))),
            _ => None,
        }
    }

    /// Skips a value of a key that is no compared feature.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// A number in JSON's grammar, finite as a double:
    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<f64> {
        let start = self.pos;
        let negative = self.eat(b'-');
        let mut digits = Digits::default();
        match self.peek()? {
            b'0' => digits.push(&mut self.pos, b'0'),
            b'1'..=b'9' => self.digits(&mut digits),
            _ => return None,
        }
        let mut integer = true;
        let mut exponent: i64 = 0;
        if self.eat(b'.') {
            integer = false;
            let before = digits.count;
            self.digits(&mut digits);
            let fraction = digits.count - before;
            if fraction == 0 {
                return None;
            }
            exponent -= i64::from(fraction);
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integer = false;
            self.pos += 1;
            let sign = if self.eat(b'-') {
                -1
            } else {
                self.eat(b'+');
                1
            };
            let mut written = Digits::default();
            self.digits(&mut written);
            if written.count == 0 {
                return None;
            }
            // A long or large exponent takes the slow path below, which
            // reads leading zeros right and decides between 0 and infinity.
            let magnitude = if written.count > 18 {
                1 << 20
            } else {
                written.value.min(1 << 20)
            };
            exponent += sign * magnitude as i64;
        }
        if integer && digits.value == 0 {
            // `serde_json` reads "-0" as the integer 0, so it is +0.0 there too.
            return Some(0.0);
        }
        let value = match digits.exact(exponent) {
            Some(magnitude) if negative => -magnitude,
            Some(magnitude) => magnitude,
            None => std::str::from_utf8(&self.bytes[start..self.pos])
                .ok()?
                .parse()
                .ok()?,
        };
        value.is_finite().then_some(value)
    }

    fn digits(&mut self, digits: &mut Digits) {
        while let Some(b @ b'0'..=b'9') = self.peek() {
            digits.push(&mut self.pos, b);
        }
    }
}

/// Bytes that end a plain string: its closing quote, or what makes it
/// unusual (an escape, a control character, non-ASCII). One table look-up
/// per byte, where strings take most of a record's length.
const ENDS_PLAIN_STRING: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b == b'"' as usize || b == b'\\' as usize || b < 0x20 || b >= 0x80;
        b += 1;
    }
    table
};

/// Decimal digits read so far, as an integer while it fits.
#[derive(Default)]
struct Digits {
    value: u64,
    count: u32,
}

/// Powers of ten a double holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

impl Digits {
    fn push(&mut self, pos: &mut usize, digit: u8) {
        self.value = self
            .value
            .wrapping_mul(10)
            .wrapping_add(u64::from(digit - b'0'));
        self.count += 1;
        *pos += 1;
    }

    /// `value × 10^exponent` when one multiplication or division of exact
    /// doubles gives it, which IEEE arithmetic then rounds correctly
    /// (Clinger's fast path): most numbers in sample files.
    fn exact(&self, exponent: i64) -> Option<f64> {
        if self.count > 19 || self.value > 1 << 53 {
            return None;
        }
        let mantissa = self.value as f64;
        let power = *EXACT_POWERS_OF_TEN.get(exponent.unsigned_abs() as usize)?;
        Some(if exponent >= 0 {
            mantissa * power
        } else {
            mantissa / power
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Bars;

    fn features() -> Vec<Feature> {
        let numeric = Bars::Numeric {
            psi_max: 0.2,
            ks_alpha: 0.01,
        };
        let categorical = Bars::Categorical {
            js_max: 0.1,
            chi2_alpha: 0.01,
        };
        [("x", numeric), ("label", categorical)]
            .into_iter()
            .map(|(name, bars)| Feature {
                name: name.to_string(),
                blocking: true,
                bars,
            })
            .collect()
    }

    fn scan(text: &str) -> (Line, Vec<(usize, Found<'_>)>) {
        let mut found = Vec::new();
        let line = line(text.as_bytes(), 0, &features(), &mut found);
        (line, found)
    }

    #[test]
    fn flat_records_are_scanned_with_their_features() {
        let text =
            " {\"label\" : \"billing\",\"n\":true,\"m\":null,\"o\":\"p\", \"x\": -1.5e2} \r\n{}";
        let (line, found) = scan(text);
        let next = text.find('\n').map(|i| i + 1);
        assert_eq!(Some(line), next.map(|next| Line::Record { next }));
        assert_eq!(
            found,
            [(1, Found::Label("billing")), (0, Found::Number(-150.0))]
        );
        assert_eq!(scan("{}").0, Line::Record { next: 2 });
        assert_eq!(scan("  \r\n{").0, Line::Blank { next: 4 });
        assert_eq!(scan("").0, Line::Blank { next: 0 });
    }

    #[test]
    fn null_leaves_the_feature_out() {
        let (line, found) = scan("{\"x\": null, \"label\": null}");
        assert!(matches!(line, Line::Record { .. }));
        assert!(found.is_empty());
    }

    #[test]
    fn numbers_follow_json_grammar_and_round_correctly() {
        let cases: &[(&str, f64)] = &[
            ("0", 0.0),
            ("-0", 0.0),
            ("-0.0", -0.0),
            ("12", 12.0),
            ("0.1", 0.1),
            ("1E+2", 100.0),
            ("2.5e-3", 0.0025),
            ("9007199254740993", 9_007_199_254_740_992.0),
            ("0.1e1", 1.0),
            ("-4.5e-22", -4.5e-22),
            ("1e0000000000000000000005", 1e5),
            ("123456789012345678901234567890", 1.2345678901234568e29),
            ("0.30000000000000004", 0.300_000_000_000_000_04),
            ("1e-400", 0.0),
        ];
        for &(text, value) in cases {
            let record = format!("{{\"x\": {text}}}");
            let (line, found) = scan(&record);
            assert!(matches!(line, Line::Record { .. }), "{text}");
            match found[0].1 {
                Found::Number(v) => assert_eq!(v.to_bits(), value.to_bits(), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in ["01", "1.", ".5", "+1", "1e", "1e400", "-", "NaN", "0x10"] {
            assert_eq!(
                scan(&format!("{{\"x\": {text}}}")).0,
                Line::Unusual,
                "{text}"
            );
        }
    }

    #[test]
    fn numbers_read_as_the_standard_parser_reads_them() {
        // Varied decimals from a fixed linear congruential sequence.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |below: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % below
        };
        for _ in 0..20_000 {
            let mut text = String::new();
            if next(2) == 0 {
                text.push('-');
            }
            let digits = 1 + next(20);
            text.push_str(&(1 + next(9)).to_string());
            for _ in 1..digits {
                text.push_str(&next(10).to_string());
            }
            if next(2) == 0 {
                text.push('.');
                for _ in 0..=next(12) {
                    text.push_str(&next(10).to_string());
                }
            }
            if next(3) == 0 {
                text.push_str(&format!("e{}", next(60) as i64 - 30));
            }
            let record = format!("{{\"x\": {text}}}");
            let expected: f64 = text.parse().expect("a valid number");
            match scan(&record).1.first() {
                Some((0, Found::Number(v))) => {
                    assert_eq!(v.to_bits(), expected.to_bits(), "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn arrays_of_numbers_are_scanned_whole() {
        assert_eq!(
            numbers(b" [1, -2.5e1,\n 0.1 ]\n"),
            Some(vec![1.0, -25.0, 0.1])
        );
        assert_eq!(numbers(b"[]"), Some(Vec::new()));
        for text in ["[1,]", "[1 2]", "[1] x", "[\"1\"]", "[[1]]", "{}", "[1"] {
            assert_eq!(numbers(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_the_parser() {
        for text in [
            "[1]",
            "{\"x\": 1} 2",
            "{\"x\": 1,}",
            "{\"x\": 1 \"y\": 2}",
            "{\"x\": 1, \"x\": 2}",
            "{\"x\": \"1\"}",
            "{\"label\": 3}",
            "{\"label\": true}",
            "{\"label\": \"caf\u{e9}\"}",
            "{\"label\": \"a\\\"b\"}",
            "{\"skip\": {\"x\": 1}}",
            "{\"skip\": tru}",
            "{\"x\": 1",
        ] {
            assert_eq!(scan(text).0, Line::Unusual, "{text}");
        }
    }
}
