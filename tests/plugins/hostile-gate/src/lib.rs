//! Gate that attacks its sandbox on request, for the daemon's hostile-plugin
//! suite (`tests/e2e/hostile_plugins.rs`).
//!
//! Params `{"mode": ..., plus the mode's own fields}` pick the attack:
//! - `pass`: passes.
//! - `loop`: spins forever (for the deadline and the fuel budget).
//! - `alloc`: allocates and touches 1 MiB chunks forever (for the memory cap).
//! - `recurse`: recurses without end (for the stack limit).
//! - `trap`: panics, which traps the instance.
//! - `garbage`: answers a verdict whose score is NaN.
//! - `huge`: answers a verdict with a `reason_bytes`-long reason (default
//!   1 MiB) and `measurements` measurements (default none).
//! - `read_file`: reads `path`; an error if it cannot, a pass naming the
//!   size if it can, so a test sees a leak as a pass.
//! - `read_granted`: reads `path` inside a granted directory and passes with
//!   its size: the positive control for `read_file`.
//! - `http`: GETs `url`; passes with the status, or gives up with the SDK's
//!   sentence for the error.
//! - `env`: looks up the environment variable `var`; passes showing it if
//!   visible (a leak), gives up saying it is not visible otherwise.
//! - `clock`: passes with the wall clock's seconds since the Unix epoch.
//! - `sleep`: sleeps `ms` milliseconds in a WASI `poll` (Rust's
//!   `thread::sleep`), a blocking host call no epoch interrupts, then passes.
//! - `nan_name`: answers a measurement named by `name_bytes` (default 1 MiB)
//!   of control characters with a NaN value, whose escaped rejection would be
//!   six times longer.
//! - `fetch_flood`: `fetch-all`s `url` `count` times at once, holding every
//!   answer (for the host's buffers against the call's memory budget).
//! - `log_inject`: logs `line` as it is, newlines included, then passes
//!   with `line` in its reason.
//!
//! Every attack is something a careless or malicious plugin could really
//! do; the host must turn each into a closed gate with a precise reason. The
//! gate asks for every capability, so whatever it cannot reach is withheld
//! by the host's sandbox, not by the plugin's own restraint.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use gatehouse_plugin_sdk::{GateRequest, Verdict, gate, http, log};
use serde::Deserialize;

/// What `huge` writes unless told otherwise: far over the host's limit.
pub const DEFAULT_HUGE_REASON_BYTES: usize = 1 << 20;

/// The attack the pipeline asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Attack {
    Pass,
    Loop,
    Alloc,
    Recurse,
    Trap,
    Garbage,
    Huge {
        #[serde(default = "default_huge_reason_bytes")]
        reason_bytes: usize,
        #[serde(default)]
        measurements: usize,
    },
    ReadFile {
        path: String,
    },
    ReadGranted {
        path: String,
    },
    Http {
        url: String,
    },
    Env {
        var: String,
    },
    Clock,
    Sleep {
        ms: u64,
    },
    NanName {
        #[serde(default = "default_huge_reason_bytes")]
        name_bytes: usize,
    },
    FetchFlood {
        url: String,
        count: usize,
    },
    LogInject {
        line: String,
    },
}

fn default_huge_reason_bytes() -> usize {
    DEFAULT_HUGE_REASON_BYTES
}

fn evaluate(request: GateRequest) -> Result<Verdict, String> {
    let attack: Attack = request.params_json()?;
    log::info(&format!("hostile-gate attacking with {attack:?}"));
    act(&attack)
}

gate! {
    name: "hostile-gate",
    summary: "Attacks its sandbox on request (loop, alloc, recurse, read files, reach the network, read the environment)",
    capabilities: ["log", "clock", "files", "http"],
    evaluate: evaluate,
}

/// Carries out `attack`; `loop`, `alloc`, `recurse` and `trap` never return.
pub fn act(attack: &Attack) -> Result<Verdict, String> {
    match attack {
        Attack::Pass => Ok(Verdict::pass("hostile-gate asked to pass")),
        Attack::Loop => loop {
            black_box(());
        },
        Attack::Alloc => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                // A non-zero fill writes every page, so the memory is really
                // committed, not just reserved.
                hoard.push(black_box(vec![0xa5u8; 1 << 20]));
            }
        }
        Attack::Recurse => Ok(Verdict::pass(format!(
            "recursion ended at {}, which it never should",
            dive(0)
        ))),
        Attack::Trap => panic!("hostile-gate asked to trap"),
        Attack::Garbage => Ok(garbage_verdict()),
        Attack::Huge {
            reason_bytes,
            measurements,
        } => Ok(huge_verdict(*reason_bytes, *measurements)),
        Attack::ReadFile { path } => std::fs::read_to_string(path)
            .map(|text| Verdict::pass(format!("read {} bytes from {path}", text.len())))
            .map_err(|e| format!("cannot read {path}: {e}")),
        Attack::ReadGranted { path } => std::fs::read_to_string(path)
            .map(|text| Verdict::pass(format!("read {} bytes from {path}", text.len())))
            .map_err(|e| format!("cannot read granted file {path}: {e}")),
        Attack::Http { url } => http::get(url)
            .map(|answer| Verdict::pass(format!("GET {url} answered HTTP {}", answer.status)))
            .map_err(|e| e.message()),
        Attack::Env { var } => match std::env::var(var) {
            Ok(value) => Ok(Verdict::pass(format!("saw {var}={value}"))),
            Err(_) => Err(format!("environment variable {var} is not visible")),
        },
        Attack::Sleep { ms } => {
            std::thread::sleep(std::time::Duration::from_millis(*ms));
            Ok(Verdict::pass(format!("slept {ms} ms")))
        }
        Attack::NanName { name_bytes } => {
            let mut verdict = Verdict::pass("hostile-gate names a NaN measurement");
            verdict
                .measurements
                .push(gatehouse_plugin_sdk::Measurement {
                    name: "\u{7}".repeat(*name_bytes),
                    value: f64::NAN,
                    unit: "count".to_string(),
                });
            Ok(verdict)
        }
        Attack::FetchFlood { url, count } => {
            let request = http::Request {
                method: "GET".into(),
                url: url.clone(),
                headers: Vec::new(),
                body: Vec::new(),
            };
            let answers = http::fetch_all(&vec![request; *count], 16);
            let bytes: usize = answers
                .iter()
                .map(|a| a.as_ref().map_or(0, |r| r.body.len()))
                .sum();
            Ok(Verdict::pass(format!(
                "held {bytes} bytes of {count} answers"
            )))
        }
        Attack::LogInject { line } => {
            log::info(line);
            Ok(Verdict::pass(format!("logged as asked: {line}")))
        }
        Attack::Clock => {
            let seconds = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Ok(Verdict::pass(format!(
                "wall clock reads {seconds} s since the Unix epoch"
            )))
        }
    }
}

/// A pass whose score is NaN. Set directly: `with_score` would sanitise it,
/// and the point is to see whether the host does.
pub fn garbage_verdict() -> Verdict {
    let mut verdict = Verdict::pass("hostile-gate answers a score of NaN");
    verdict.score = f64::NAN;
    verdict
}

/// A pass with a `reason_bytes`-long reason and `measurements` figures.
pub fn huge_verdict(reason_bytes: usize, measurements: usize) -> Verdict {
    let mut verdict = Verdict::pass("x".repeat(reason_bytes));
    verdict.measurements = (0..measurements)
        .map(|i| gatehouse_plugin_sdk::Measurement {
            name: format!("m{i}"),
            value: i as f64,
            unit: "count".to_string(),
        })
        .collect();
    verdict
}

/// Recurses until the stack runs out. `black_box` on the argument and the
/// result keeps the optimiser from proving the depth or turning the call
/// into a loop; the addition after the call keeps it out of tail position.
fn dive(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return depth;
    }
    black_box(dive(black_box(depth + 1))).wrapping_add(depth)
}

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::{Outcome, parse_params};

    use super::*;

    fn attack(params: &str) -> Result<Attack, String> {
        parse_params(params).map_err(String::from)
    }

    #[test]
    fn modes_parse_with_their_fields() {
        assert_eq!(attack(r#"{"mode": "loop"}"#), Ok(Attack::Loop));
        assert_eq!(
            attack(r#"{"mode": "read_file", "path": "/etc/passwd"}"#),
            Ok(Attack::ReadFile {
                path: "/etc/passwd".into()
            })
        );
        assert_eq!(
            attack(r#"{"mode": "env", "var": "SECRET"}"#),
            Ok(Attack::Env {
                var: "SECRET".into()
            })
        );
        assert_eq!(
            attack(r#"{"mode": "http", "url": "http://127.0.0.1:9/"}"#),
            Ok(Attack::Http {
                url: "http://127.0.0.1:9/".into()
            })
        );
    }

    #[test]
    fn huge_defaults_to_a_mebibyte_reason_and_no_measurements() {
        assert_eq!(
            attack(r#"{"mode": "huge"}"#),
            Ok(Attack::Huge {
                reason_bytes: DEFAULT_HUGE_REASON_BYTES,
                measurements: 0
            })
        );
        assert_eq!(
            attack(r#"{"mode": "huge", "reason_bytes": 5, "measurements": 10000}"#),
            Ok(Attack::Huge {
                reason_bytes: 5,
                measurements: 10_000
            })
        );
    }

    #[test]
    fn missing_field_unknown_field_and_unknown_mode_are_refused() {
        let err = attack(r#"{"mode": "read_file"}"#).unwrap_err();
        assert!(err.contains("missing field `path`"), "{err}");
        let err = attack(r#"{"mode": "read_file", "path": "/x", "url": "y"}"#).unwrap_err();
        assert!(err.contains("unknown field `url`"), "{err}");
        let err = attack(r#"{"mode": "explode"}"#).unwrap_err();
        assert!(err.contains("explode"), "{err}");
        let err = attack("{}").unwrap_err();
        assert!(err.contains("mode"), "{err}");
    }

    #[test]
    fn garbage_verdict_keeps_its_nan_score() {
        let verdict = garbage_verdict();
        assert!(verdict.score.is_nan());
        assert_eq!(verdict.outcome, Outcome::Pass);
    }

    #[test]
    fn huge_verdict_has_the_asked_sizes() {
        let verdict = huge_verdict(DEFAULT_HUGE_REASON_BYTES, 10_000);
        assert_eq!(verdict.reason.len(), 1 << 20);
        assert_eq!(verdict.measurements.len(), 10_000);
        assert_eq!(verdict.measurements[9_999].name, "m9999");
        assert!(verdict.measurements.iter().all(|m| m.value.is_finite()));
    }

    #[test]
    fn env_mode_reports_a_missing_variable_as_not_visible() {
        let err = act(&Attack::Env {
            var: "GATEHOUSE_HOSTILE_SURELY_UNSET_VARIABLE".into(),
        })
        .unwrap_err();
        assert_eq!(
            err,
            "environment variable GATEHOUSE_HOSTILE_SURELY_UNSET_VARIABLE is not visible"
        );
    }

    #[test]
    fn read_file_mode_reports_what_it_read_or_why_not() {
        let dir = std::env::temp_dir().join(format!("hostile-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("ok.txt");
        std::fs::write(&file, "ok").expect("write");
        let path = file.display().to_string();
        let read = act(&Attack::ReadFile { path: path.clone() }).map(|v| v.reason);
        assert_eq!(read, Ok(format!("read 2 bytes from {path}")));
        let missing = dir.join("missing.txt").display().to_string();
        let err = act(&Attack::ReadFile {
            path: missing.clone(),
        })
        .unwrap_err();
        assert!(
            err.starts_with(&format!("cannot read {missing}: ")),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn http_off_wasm_gives_up_with_the_sdk_sentence() {
        let err = act(&Attack::Http {
            url: "http://127.0.0.1:9/".into(),
        })
        .unwrap_err();
        assert!(err.contains("off WebAssembly"), "{err}");
    }
}
