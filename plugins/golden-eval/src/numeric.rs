//! Reading the number a model wrote, for the `numeric` scorer.
//!
//! Answers are prose as often as bare numbers ("about 101.4 USD"), so the
//! scorer takes the first number written anywhere in the output. Only ASCII
//! digits with `.` as the decimal point are read: thousands separators and
//! decimal commas vary by locale and would be guessed wrong as often as right.

/// The first number written in `text`: an optional sign, digits with an
/// optional fraction, an optional exponent (`-12`, `3.5`, `.5`, `2e-3`).
pub fn first_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_digits = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_digit);
        let begins = starts_digits(i) || (bytes[i] == b'.' && starts_digits(i + 1));
        if !begins {
            i += 1;
            continue;
        }
        let start = if i > 0 && matches!(bytes[i - 1], b'-' | b'+') {
            i - 1
        } else {
            i
        };
        let mut end = i;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        if end < bytes.len() && bytes[end] == b'.' && starts_digits(end + 1) {
            end += 1;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
        }
        if end < bytes.len() && matches!(bytes[end], b'e' | b'E') {
            let mut exp = end + 1;
            if exp < bytes.len() && matches!(bytes[exp], b'-' | b'+') {
                exp += 1;
            }
            if starts_digits(exp) {
                end = exp;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
            }
        }
        return text[start..end].parse().ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_number_reads_signs_fractions_and_exponents() {
        assert_eq!(first_number("total: -12 items"), Some(-12.0));
        assert_eq!(first_number("x=.5"), Some(0.5));
        assert_eq!(first_number("2.5e-3s"), Some(0.0025));
        assert_eq!(first_number("version 3. then"), Some(3.0));
        assert_eq!(first_number("1e"), Some(1.0));
        assert_eq!(first_number("none"), None);
    }
}
