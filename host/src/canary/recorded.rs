//! Recorded samples: judging a canary offline, from two files, with no
//! daemon.
//!
//! Rules: a file is CSV with a header row, or JSON lines (one object per
//! line), told apart by extension (`.csv`, `.jsonl`/`.ndjson`/`.json`) or
//! else by its first character. Columns or keys: `request_key`,
//! `latency_ms`, `error`, `cost`, `output` (the fingerprint), `prediction`;
//! only `latency_ms` is required; other columns are ignored. A bad value is
//! refused with its file, line and field named. CSV fields may be quoted
//! (with `""` for a quote) but may not span lines.
//!
//! The replay feeds both files in proportion, with an interim look of the
//! sequential tests every [`LOOK_EVERY`] samples per arm, then one final
//! look — as the daemon would have judged the same traffic.

use super::{Arm, Canary, CanaryConfig, Error, Judgement, Look, Observation};
use serde_json::Value;
use std::path::Path;

/// Samples per arm between two interim looks of the replay.
pub const LOOK_EVERY: usize = 20;

const COLUMNS: [&str; 6] = [
    "request_key",
    "latency_ms",
    "error",
    "cost",
    "output",
    "prediction",
];

/// Reads one arm's samples from a CSV or JSON-lines file.
pub fn read_samples(path: &Path, arm: Arm) -> Result<Vec<Observation>, Error> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadSamples {
        file: file.clone(),
        source,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let json = match ext.as_deref() {
        Some("csv") => false,
        Some("jsonl" | "ndjson" | "json") => true,
        _ => text.trim_start().starts_with('{'),
    };
    if json {
        parse_json_lines(&file, &text, arm)
    } else {
        parse_csv(&file, &text, arm)
    }
}

/// Judges recorded baseline and canary samples.
pub fn judge_files(
    config: CanaryConfig,
    baseline: &Path,
    canary: &Path,
) -> Result<Judgement, Error> {
    let b = read_samples(baseline, Arm::Baseline)?;
    let c = read_samples(canary, Arm::Canary)?;
    Ok(replay(config, b, c))
}

/// Feeds both arms in proportion with interim looks, then looks finally.
pub fn replay(
    config: CanaryConfig,
    baseline: Vec<Observation>,
    canary: Vec<Observation>,
) -> Judgement {
    let mut judge = Canary::new(config);
    let looks = baseline.len().max(canary.len()).div_ceil(LOOK_EVERY).max(1);
    let (mut b, mut c) = (baseline.into_iter(), canary.into_iter());
    let (nb, nc) = (b.len(), c.len());
    let (mut fed_b, mut fed_c) = (0, 0);
    for look in 1..=looks {
        let (to_b, to_c) = ((nb * look).div_ceil(looks), (nc * look).div_ceil(looks));
        // Every observation was checked when it was parsed.
        for o in b
            .by_ref()
            .take(to_b - fed_b)
            .chain(c.by_ref().take(to_c - fed_c))
        {
            let _ = judge.observe(o);
        }
        (fed_b, fed_c) = (to_b, to_c);
        if look < looks {
            judge.judge(Look::Interim);
        }
    }
    judge.judge(Look::Final)
}

struct Row {
    request_key: String,
    latency_ms: f64,
    error: bool,
    cost: f64,
    output: Option<String>,
    prediction: Option<f64>,
}

impl Row {
    fn into_observation(self, arm: Arm) -> Observation {
        Observation {
            arm,
            request_key: self.request_key,
            latency_ms: self.latency_ms,
            error: self.error,
            cost: self.cost,
            output_fingerprint: self.output,
            prediction: self.prediction,
        }
    }
}

fn bad(file: &str, line: usize, problem: String) -> Error {
    Error::BadSample {
        file: file.to_string(),
        line,
        problem,
    }
}

/// Checks a row the way the window will, so a file is refused at its line.
fn check(file: &str, line: usize, row: Row, arm: Arm) -> Result<Observation, Error> {
    let o = row.into_observation(arm);
    o.validate().map_err(|e| bad(file, line, e.to_string()))?;
    Ok(o)
}

pub fn parse_csv(file: &str, text: &str, arm: Arm) -> Result<Vec<Observation>, Error> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let header = split_csv(header).map_err(|p| bad(file, 1, p))?;
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let at: Vec<Option<usize>> = COLUMNS.iter().map(|c| column(c)).collect();
    if at[1].is_none() {
        return Err(bad(
            file,
            1,
            format!(
                "no `latency_ms` column in the header; columns are {}",
                COLUMNS.join(", ")
            ),
        ));
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        let fields = split_csv(line).map_err(|p| bad(file, n, p))?;
        let get = |k: usize| {
            at[k]
                .and_then(|i| fields.get(i))
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
        };
        let number = |k: usize| -> Result<Option<f64>, Error> {
            get(k)
                .map(|s| {
                    s.parse::<f64>()
                        .map_err(|_| bad(file, n, format!("{} is {s:?}, not a number", COLUMNS[k])))
                })
                .transpose()
        };
        let row = Row {
            request_key: get(0).unwrap_or("").to_string(),
            latency_ms: number(1)?.ok_or_else(|| bad(file, n, "latency_ms is empty".into()))?,
            error: get(2)
                .map(|s| {
                    flag(s).ok_or_else(|| {
                        bad(file, n, format!("error is {s:?}; use true/false or 1/0"))
                    })
                })
                .transpose()?
                .unwrap_or(false),
            cost: number(3)?.unwrap_or(0.0),
            output: get(4).map(str::to_string),
            prediction: number(5)?,
        };
        out.push(check(file, n, row, arm)?);
    }
    Ok(out)
}

fn flag(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Splits one CSV line; quoted fields may hold commas and `""` quotes.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match (ch, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed on this line".to_string());
    }
    fields.push(field);
    Ok(fields)
}

pub fn parse_json_lines(file: &str, text: &str, arm: Arm) -> Result<Vec<Observation>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| bad(file, n, format!("not JSON: {e}")))?;
        let Value::Object(obj) = v else {
            return Err(bad(file, n, "each line must be one JSON object".into()));
        };
        let number = |key: &str| -> Result<Option<f64>, Error> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(x)) => Ok(x.as_f64()),
                Some(other) => Err(bad(file, n, format!("{key} is {other}, not a number"))),
            }
        };
        let text_of = |key: &str| match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let error = match obj.get("error") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(x)) if x.as_f64() == Some(0.0) => false,
            Some(Value::Number(x)) if x.as_f64() == Some(1.0) => true,
            Some(other) => {
                return Err(bad(
                    file,
                    n,
                    format!("error is {other}; use true/false or 1/0"),
                ));
            }
        };
        let row = Row {
            request_key: text_of("request_key").unwrap_or_default(),
            latency_ms: number("latency_ms")?
                .ok_or_else(|| bad(file, n, "no latency_ms".into()))?,
            error,
            cost: number("cost")?.unwrap_or(0.0),
            output: text_of("output"),
            prediction: number("prediction")?,
        };
        out.push(check(file, n, row, arm)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::{Decision, Metric, Outcome};
    use std::fmt::Write;

    #[test]
    fn csv_reads_optional_columns_and_quotes() {
        let text = "request_key,latency_ms,error,output,extra\n\
                    a,12.5,true,\"cat, tabby\",x\n\
                    b,7,0,\"say \"\"hi\"\"\",y\n\
                    \n\
                    ,3,,,\n";
        let obs = parse_csv("b.csv", text, Arm::Baseline).unwrap();
        assert_eq!(obs.len(), 3);
        assert_eq!(obs[0].request_key, "a");
        assert!(obs[0].error);
        assert_eq!(obs[0].output_fingerprint.as_deref(), Some("cat, tabby"));
        assert_eq!(obs[1].output_fingerprint.as_deref(), Some("say \"hi\""));
        assert_eq!(obs[2].latency_ms, 3.0);
        assert_eq!(obs[2].cost, 0.0);
        assert_eq!(obs[2].output_fingerprint, None);
    }

    #[test]
    fn bad_rows_are_refused_with_file_and_line() {
        let err = parse_csv(
            "c.csv",
            "latency_ms,error\n1,false\nslow,false\n",
            Arm::Canary,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("c.csv, line 3"), "{err}");
        assert!(err.contains("latency_ms"), "{err}");
        let err = parse_csv("c.csv", "latency,error\n1,false\n", Arm::Canary)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `latency_ms` column"), "{err}");
        let err = parse_json_lines("c.jsonl", "{\"latency_ms\": -4}\n", Arm::Canary)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1") && err.contains("latency_ms is -4"),
            "{err}"
        );
    }

    #[test]
    fn json_lines_read_numbers_flags_and_labels() {
        let text = "{\"request_key\": 7, \"latency_ms\": 3.5, \"error\": 1, \"output\": \"dog\", \"prediction\": 0.25}\n\
                    \n{\"latency_ms\": 4, \"error\": false, \"cost\": 0.002}\n";
        let obs = parse_json_lines("c.jsonl", text, Arm::Canary).unwrap();
        assert_eq!(obs.len(), 2);
        assert_eq!(obs[0].request_key, "7");
        assert!(obs[0].error);
        assert_eq!(obs[0].prediction, Some(0.25));
        assert_eq!(obs[1].cost, 0.002);
    }

    #[test]
    fn judge_files_reads_csv_and_json_lines_and_judges() {
        let dir = tempfile::tempdir().unwrap();
        let mut baseline = String::from("request_key,latency_ms,error,output,prediction\n");
        let mut canary = String::new();
        for i in 0..200 {
            // Deterministic spread; the canary is 40% slower on the same keys.
            let latency = 50.0 + ((i * 37) % 100) as f64;
            writeln!(baseline, "k{i},{latency},false,cat,0.5").unwrap();
            writeln!(
                canary,
                "{{\"request_key\":\"k{i}\",\"latency_ms\":{},\"output\":\"cat\",\"prediction\":0.5}}",
                latency * 1.4
            )
            .unwrap();
        }
        let (b, c) = (
            dir.path().join("baseline.csv"),
            dir.path().join("canary.jsonl"),
        );
        std::fs::write(&b, baseline).unwrap();
        std::fs::write(&c, canary).unwrap();
        let j = judge_files(CanaryConfig::default(), &b, &c).unwrap();
        assert_eq!(j.decision, Decision::RollBack, "{}", j.reason);
        assert_eq!(
            (j.baseline_n, j.canary_n, j.mirrored_pairs),
            (200, 200, 200)
        );
        assert_eq!(
            j.metric(Metric::LatencyMean).unwrap().outcome,
            Outcome::Fail
        );
        assert_eq!(
            j.metric(Metric::LabelDivergence).unwrap().outcome,
            Outcome::Pass
        );
        // Same file on both sides: nothing to hold the canary back.
        let same = judge_files(CanaryConfig::default(), &b, &b).unwrap();
        assert_eq!(same.decision, Decision::Promote, "{}", same.reason);
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = judge_files(
            CanaryConfig::default(),
            Path::new("/nonexistent/b.csv"),
            Path::new("/nonexistent/c.csv"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/b.csv"), "{err}");
    }
}
