//! The crate's dependencies run one way: leaf types → store → the domain's
//! parts → the executor → the daemon → the API and the server. This test
//! reads every `crate::` path in the library's production code (test
//! modules left out) and fails on an import that points up a layer, or on
//! a cycle between parts of one layer, naming the file to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each module group and its layer; a group may import groups of lower
/// layers, and groups of its own layer as long as no cycle forms.
const LAYERS: &[(&str, u8)] = &[
    ("digest", 0),
    ("ids", 0),
    ("verdict", 0),
    ("store", 1),
    ("canary", 2),
    ("plugins", 2),
    ("configstore", 2),
    ("pipeline::definition", 2),
    ("pipeline::release", 2),
    ("pipeline::candidate", 2),
    ("pipeline::attachment", 2),
    ("pipeline::holds", 2),
    ("telemetry", 2),
    ("pipeline::executor", 3),
    ("daemon", 4),
    ("api", 5),
    ("http", 5),
    ("server", 5),
    ("client", 5),
    ("proto", 5),
    ("flagd", 5),
];

/// Files that only declare modules or are not part of the layering.
const OUTSIDE: &[&str] = &["lib.rs", "main.rs", "layers.rs", "pipeline/mod.rs"];

fn group_of(path: &str) -> Option<&'static str> {
    LAYERS
        .iter()
        .map(|(g, _)| *g)
        .filter(|g| path == *g || path.starts_with(&format!("{g}::")))
        .max_by_key(|g| g.len())
}

fn rank(group: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(g, _)| *g == group)
        .map_or(u8::MAX, |(_, r)| *r)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `pipeline/executor/apply.rs` is
/// `pipeline::executor::apply`.
fn module_of(relative: &str) -> String {
    let trimmed = relative.trim_end_matches(".rs").trim_end_matches("/mod");
    trimmed.replace('/', "::")
}

/// The code of a file without its `#[cfg(test)]` items: a test may reach
/// anywhere to set up what it checks.
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            // Skip the item that follows: to its closing brace at the same
            // indentation, or one line for `mod tests;`.
            let Some(item) = lines.next() else { break };
            if item.trim_end().ends_with(';') {
                continue;
            }
            let indent = item.len() - item.trim_start().len();
            for rest in lines.by_ref() {
                let i = rest.len() - rest.trim_start().len();
                if i == indent && rest.trim_start().starts_with('}') {
                    break;
                }
            }
            continue;
        }
        let code = line.split("//").next().unwrap_or_default();
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Every path named after `crate::`, with `{a, b::c}` groups expanded.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let part = part.trim().split("::{").next().unwrap_or_default();
                if !part.is_empty() {
                    out.push(part.to_string());
                }
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            out.push(rest[..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// group → (imported group → the files that import it).
fn imports() -> BTreeMap<&'static str, BTreeMap<&'static str, BTreeSet<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<_, BTreeMap<_, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        let is_test_file = relative.ends_with("/tests.rs") || relative.contains("/tests/");
        if OUTSIDE.contains(&relative.as_str()) || relative.starts_with("cli/") || is_test_file {
            continue;
        }
        let module = module_of(&relative);
        let from = group_of(&module)
            .unwrap_or_else(|| panic!("{relative} is in no layer; add its module to LAYERS"));
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for path in crate_paths(&production_code(&text)) {
            let Some(to) = group_of(&path) else {
                panic!("{relative} imports crate::{path}, which is in no layer; add it to LAYERS");
            };
            if to != from {
                edges
                    .entry(from)
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(relative.clone());
            }
        }
    }
    edges
}

#[test]
fn no_import_points_up_a_layer() {
    let mut wrong = Vec::new();
    for (from, tos) in imports() {
        for (to, files) in tos {
            if rank(to) > rank(from) {
                wrong.push(format!("{from} → {to} in {files:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_cycle_between_modules() {
    let edges = imports();
    // Depth-first search for a path back to where it started.
    fn reaches(
        edges: &BTreeMap<&'static str, BTreeMap<&'static str, BTreeSet<String>>>,
        from: &'static str,
        target: &'static str,
        seen: &mut BTreeSet<&'static str>,
        path: &mut Vec<&'static str>,
    ) -> bool {
        for next in edges.get(from).into_iter().flat_map(|t| t.keys()) {
            path.push(next);
            if *next == target {
                return true;
            }
            if seen.insert(next) && reaches(edges, next, target, seen, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut cycles = Vec::new();
    for start in edges.keys() {
        let mut path = vec![*start];
        if reaches(&edges, start, start, &mut BTreeSet::new(), &mut path) {
            cycles.push(path.join(" → "));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_reader_finds_paths_groups_and_skips_tests() {
    let code = "use crate::store::{self, Tx};\nuse crate::{digest::Digest, ids::DAEMON};\nfn f() { crate::canary::live::x(); }\n#[cfg(test)]\nmod tests {\n    use crate::daemon::Daemon;\n}\n";
    let paths = crate_paths(&production_code(code));
    assert_eq!(
        paths,
        [
            "store::",
            "digest::Digest",
            "ids::DAEMON",
            "canary::live::x"
        ]
        .map(|p| p.trim_end_matches(':').to_string())
    );
    assert_eq!(
        group_of("pipeline::release::machine"),
        Some("pipeline::release")
    );
    assert_eq!(module_of("pipeline/executor/mod.rs"), "pipeline::executor");
}
