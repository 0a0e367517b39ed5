//! Gate that holds a candidate's latency to SLOs on p50, p95 and p99, and
//! to the incumbent's latency.
//!
//! # What it judges
//!
//! From the candidate's latency samples (attached by CI, or measured live)
//! the gate estimates p50, p95 and p99, each with a two-sided
//! distribution-free confidence interval at `confidence` (order statistics
//! chosen by the binomial distribution, valid whatever the latencies'
//! distribution). Against an SLO (`p50_ms`, `p95_ms`, `p99_ms`, each
//! optional) a percentile
//!
//! - **fails** when its point estimate is above the SLO;
//! - is **uncertain** when the point is within the SLO but the interval's
//!   upper bound is not: the samples cannot show the SLO holds, so the
//!   verdict is inconclusive (or warns, with `when_uncertain = "warn"`);
//! - is **too few** when the sample is too small for an interval at all,
//!   e.g. p99 at 95% needs at least 368 samples, p95 72, p50 6: the verdict
//!   is inconclusive and says how many are needed;
//! - **meets** it when the whole interval is within it.
//!
//! Against the incumbent (samples CI attached when it was released), with
//! `max_regression_pct` set: a percentile regressed when it is more than
//! that many percent above the incumbent's *and* a one-sided Mann-Whitney U
//! test finds the candidate's latencies significantly higher at `alpha`. A
//! rise the test does not confirm warns. The test sees shifts of the whole
//! distribution; a regression confined to the slowest 1% may escape it, so
//! hold the tail with `p99_ms` too. Without incumbent samples the gate says
//! it did not compare, and is inconclusive only if it had nothing else to
//! judge.
//!
//! The verdict fails on any failing percentile or regression; else it is
//! inconclusive on any percentile too few or uncertain (or too many failed
//! live requests, which comes first); else it warns on any warning; else
//! it passes. Measurements: `samples`, `p50`, `p95`, `p99` with
//! `p50_low`/`p50_high` and so on (when the interval exists), and with an
//! incumbent `incumbent_samples`, `incumbent_p50`/`_p95`/`_p99`,
//! `regression_pct[p50]` (and p95, p99) and `mwu_p`; live, `http_errors`.
//!
//! # Params
//!
//! | param | default | meaning |
//! | --- | --- | --- |
//! | `p50_ms`, `p95_ms`, `p99_ms` | none | SLOs in milliseconds; at least one of them or `max_regression_pct` is required |
//! | `max_regression_pct` | none | largest rise over the incumbent's percentile, in percent: a number for all three, or `{ p50 = 10, p99 = 25 }` |
//! | `confidence` | 0.95 | confidence of each percentile's interval |
//! | `alpha` | 0.01 | significance level of the one-sided Mann-Whitney test |
//! | `when_uncertain` | `"inconclusive"` | `"inconclusive"` or `"warn"`: the outcome when a percentile meets its SLO but its interval does not |
//! | `samples` | `"attachment:latency.jsonl"` | data source of the candidate's samples: `attachment:NAME`, `incumbent-attachment:NAME` or a path in a granted data directory; not with `live` |
//! | `incumbent_samples` | `"incumbent-attachment:latency.jsonl"` | data source of the incumbent's samples |
//! | `live` | none | `{ base_url, method = "GET", headers = {}, body, requests = 50, max_in_flight = 1, max_http_errors = 0.05 }`: time calls to the candidate's endpoint instead (see [`live`]) |
//!
//! # Sample files
//!
//! JSON lines with `latency_ms` (other keys are ignored, so the golden
//! outputs CI attaches for `golden-eval`, which carry `latency_ms`, serve
//! as they are), bare numbers one per line, or one JSON array of numbers:
//!
//! ```text
//! {"latency_ms": 412.0}
//! {"id": "triage-0002", "output": "other", "latency_ms": 419.0}
//! ```
//!
//! A line without a latency is an error naming it, never skipped: the
//! requests left unmeasured are often the slow ones.
//!
//! # Pipeline
//!
//! ```toml
//! [[environment]]
//! name = "production"
//!
//!   [[environment.gate]]
//!   plugin = "latency"
//!   timeout_ms = 2000
//!   params = { p95_ms = 800, p99_ms = 1000, max_regression_pct = { p50 = 10, p99 = 25 } }
//! ```
//!
//! `examples/outputs/triage-v2.latency.jsonl` and
//! `triage-v4-regressed.latency.jsonl` hold 600 samples each (written by
//! `latency.py` there): `triage-v2` passes the gate above (p99 682.7 ms,
//! interval up to 740.8 ms); `triage-v4-regressed`, whose slowest 6% of
//! requests take 2 to 4 times longer, fails it: p95 948.6 ms and p99
//! 1520.6 ms exceed their SLOs, and against `triage-v2` its p99 rose 123%
//! with a significant shift.
//!
//! # Builds and capabilities
//!
//! - default: attachments only; asks for nothing, needs no manifest grant.
//! - `--features files`: `samples` and `incumbent_samples` may be paths in
//!   a data directory; asks for `"files"`, granted with a `[[files]]`
//!   directory in the manifest.
//! - `--features live`: times calls to the endpoint; asks for `"http"` (the
//!   manifest lists the host under `[http] allow_hosts`) and `"clock"`:
//!   inside the sandbox the clock is stopped unless `clock` is granted, and
//!   every call would take 0 ms. Give the gate a `timeout_ms` above
//!   `requests` × the slowest call you expect.
//!
//! ```toml
//! # manifest of `cargo build --release --target wasm32-wasip2 --features live`
//! capabilities = ["http", "clock"]
//!
//! [http]
//! allow_hosts = ["127.0.0.1:8089"]
//! ```
//!
//! A build is told params it cannot serve (a path, `live`) with the fix.

pub mod compare;
pub mod live;
pub mod params;
pub mod percentile;
pub mod report;
pub mod samples;

use gatehouse_plugin_sdk::{Description, Gate, GateRequest, Verdict, data, export_gate};

use crate::compare::Regression;
pub use crate::params::Params;
use crate::percentile::{Percentile, Slo, estimate};
use crate::report::{HttpErrors, Judged};

/// The exported gate.
pub struct Latency;

impl Gate for Latency {
    type Params = Params;

    fn describe() -> Description {
        let mut description = Description::gate(
            "latency",
            env!("CARGO_PKG_VERSION"),
            "Holds the candidate's p50/p95/p99 latency to SLOs and to the incumbent's",
        )
        .with_params_schema(params::schema());
        if cfg!(feature = "files") {
            description = description.with_capability("files");
        }
        if cfg!(feature = "live") {
            description = description.with_capability("http").with_capability("clock");
        }
        description
    }

    fn evaluate(_: GateRequest, params: Params) -> Result<Verdict, String> {
        judge(&params)
    }
}

export_gate!(Latency);

/// Judges `request`: reads or measures the samples, estimates, compares.
pub fn judge(params: &Params) -> Result<Verdict, String> {
    let mut http_errors = None;
    let (mut sorted, measured_by) = match (&params.live, params.samples_source()) {
        (Some(live), _) => {
            let measured = live::measure(live)?;
            http_errors = Some(HttpErrors {
                failed: measured.failures,
                sent: live.requests as usize,
                first: measured.first_failure,
            });
            (measured.latencies, "live requests")
        }
        (None, source) => {
            let source = source.unwrap_or(params::DEFAULT_SAMPLES);
            if !data::exists(source) {
                let why = data::read(source).err().unwrap_or_default();
                return Ok(Verdict::inconclusive(gatehouse_plugin_sdk::sentences(&[
                    format!("no latency samples to judge: {why}"),
                ])));
            }
            (samples::read(source)?, source)
        }
    };
    if sorted.is_empty() {
        let why = match &http_errors {
            Some(errors) => format!(
                "all {} live requests failed ({}); fix the endpoint or the manifest's [http] allow_hosts and measure again",
                errors.failed,
                errors.first.as_deref().unwrap_or("no reason given")
            ),
            None => format!(
                "no latency samples in {measured_by}; attach at least {} (one per request)",
                needed_for_bars(params)
            ),
        };
        return Ok(Verdict::inconclusive(gatehouse_plugin_sdk::sentences(&[
            why,
        ])));
    }
    sorted.sort_unstable_by(f64::total_cmp);

    let c = params.confidence;
    let estimates = [
        estimate(&sorted, Percentile::P50, c)?,
        estimate(&sorted, Percentile::P95, c)?,
        estimate(&sorted, Percentile::P99, c)?,
    ];
    let slos: [Option<Slo>; 3] = Percentile::ALL.map(|p| {
        params
            .slo(p)
            .map(|slo| percentile::against_slo(&estimates[p.index()], p, slo, params.confidence))
    });

    let comparing = Percentile::ALL
        .iter()
        .any(|&p| params.max_regression(p).is_some());
    let (incumbent, no_incumbent) = if !comparing {
        (None, None)
    } else if !data::exists(&params.incumbent_samples) {
        (None, Some(missing_incumbent(&params.incumbent_samples)))
    } else {
        let mut theirs = samples::read(&params.incumbent_samples)?;
        if theirs.is_empty() {
            (
                None,
                Some(format!("{} holds no samples", params.incumbent_samples)),
            )
        } else {
            theirs.sort_unstable_by(f64::total_cmp);
            (Some(compare::incumbent(&sorted, &theirs)?), None)
        }
    };
    let regressions: [Regression; 3] = Percentile::ALL.map(|p| {
        compare::judge(
            params,
            p,
            &estimates[p.index()],
            sorted.len(),
            incumbent.as_ref(),
        )
    });

    Ok(report::verdict(&Judged {
        params,
        measured_by,
        samples: sorted.len(),
        estimates,
        slos,
        regressions,
        incumbent: incumbent.as_ref(),
        no_incumbent,
        http_errors,
    }))
}

/// The most samples any set bar needs, for a message.
fn needed_for_bars(params: &Params) -> usize {
    Percentile::ALL
        .iter()
        .filter(|&&p| params.slo(p).is_some() || params.max_regression(p).is_some())
        .map(|&p| percentile::needed(p, params.confidence))
        .max()
        .unwrap_or(1)
}

fn missing_incumbent(source: &str) -> String {
    match source.strip_prefix("incumbent-attachment:") {
        Some(name) => format!(
            "the incumbent's submission has no attachment {name:?} (a first release, or it was submitted without it); attach {name} with every submission"
        ),
        None => format!("{source} does not exist"),
    }
}
