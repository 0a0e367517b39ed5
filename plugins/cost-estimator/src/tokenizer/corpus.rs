// Shared by the build script, which counts these texts with tiktoken-rs,
// and by the tokenizer's tests, which compare the gate's counts with those.
/// Texts that stress the split and the merges: long words, digits,
/// mixed scripts, whitespace before words and at the end.
pub fn corpus() -> Vec<String> {
    let mut texts: Vec<String> = [
        "Pneumonoultramicroscopicsilicovolcanoconiosis and antidisestablishmentarianism",
        "Order #123456789 shipped on 2024-11-05 at 09:30:00Z for $1,234.56 (incl. 20% VAT).",
        "fn main() {\n    println!(\"{}\", 40 + 2);\n}\n",
        "  \t  indented\n\n\n    trailing   ",
        "ALLCAPS CamelCaseWords snake_case_words kebab-case-words",
        "Ich möchte mein Passwort zurücksetzen, aber die E-Mail kommt nicht an.",
        "私のアカウントにログインできません。パスワードを再設定してください。",
        "Мой счёт заблокирован после двух неудачных попыток входа.",
        "مرحبا، لم أتلق الفاتورة لهذا الشهر",
        "emoji 🎉🎉🎉 and flags 🇫🇷🇩🇪 and zwj 👩‍💻",
        "He said: \"I'd've gone, but they'RE late\" — wasn't it?",
        "https://example.com/path/to/page?query=1&other=two#frag",
        "<|endoftext|> is plain text when counting ordinary tokens",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    texts.push("abcdefghij".repeat(50));
    texts.push("The quick brown fox jumps over the lazy dog. ".repeat(20));
    texts
}
