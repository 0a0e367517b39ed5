//! Lays out the token tables of OpenAI's `o200k_base` and `cl100k_base`
//! encodings for the gate to read in place.
//!
//! tiktoken ships each table as 100,000 to 200,000 lines of base64; parsing
//! that into a hash map costs over a billion instructions per call inside the
//! sandbox, most of a gate's fuel. Done once here, at build time, the gate
//! starts counting at once. The layout (all integers little-endian `u32`):
//!
//! ```text
//! count N | N + 1 offsets, by rank, into the bytes | N ranks, sorted by their bytes | bytes
//! ```

use std::path::Path;

fn main() {
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let out = Path::new(&out);
    // Ordinary tokens only: special tokens (`<|endoftext|>`) never come from
    // counting plain text. The counts are tiktoken's, checked so that a
    // changed table cannot slip in unnoticed.
    let o200k = tiktoken_rs::o200k_base().expect("tiktoken-rs builds o200k_base");
    write(&out.join("o200k_base.tokens"), &o200k, 199_998);
    let cl100k = tiktoken_rs::cl100k_base().expect("tiktoken-rs builds cl100k_base");
    write(&out.join("cl100k_base.tokens"), &cl100k, 100_256);
    // The reference the tokenizer's tests check the gate's BPE against,
    // token count for token count; counted here, where tiktoken-rs already
    // is, so the tests need no second copy of it.
    let mut counts = String::from("const TIKTOKEN_RS_COUNTS: &[(u64, u64)] = &[\n");
    for text in corpus::corpus() {
        counts.push_str(&format!(
            "    ({}, {}),\n",
            cl100k.encode_ordinary(&text).len(),
            o200k.encode_ordinary(&text).len()
        ));
    }
    counts.push_str("];\n");
    std::fs::write(out.join("reference_counts.rs"), counts).expect("write the reference counts");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/tokenizer/corpus.rs");
}

mod corpus {
    include!("src/tokenizer/corpus.rs");
}

fn write(path: &Path, bpe: &tiktoken_rs::CoreBPE, expected: usize) {
    // Ranks are dense from 0; the first gap is where special tokens begin.
    let tokens: Vec<Vec<u8>> = (0u32..)
        .map_while(|rank| bpe.decode_bytes(&[rank]).ok())
        .collect();
    assert_eq!(
        tokens.len(),
        expected,
        "{}: unexpected number of tokens",
        path.display()
    );
    let mut by_bytes: Vec<u32> = (0..tokens.len() as u32).collect();
    by_bytes.sort_by(|a, b| tokens[*a as usize].cmp(&tokens[*b as usize]));

    let mut blob = Vec::new();
    blob.extend((tokens.len() as u32).to_le_bytes());
    let mut offset = 0u32;
    for token in &tokens {
        blob.extend(offset.to_le_bytes());
        offset += token.len() as u32;
    }
    blob.extend(offset.to_le_bytes());
    for rank in &by_bytes {
        blob.extend(rank.to_le_bytes());
    }
    for token in &tokens {
        blob.extend(token);
    }
    std::fs::write(path, blob).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
