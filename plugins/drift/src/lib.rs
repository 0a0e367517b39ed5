//! Gate that compares distributions of the candidate's features with a
//! reference, feature by feature, and fails when they drifted apart.
//!
//! # What it judges
//!
//! Both sides are samples of per-request features: what the model answered
//! (`output_label`), how long the answer was (`output_length`), how sure it
//! was (`confidence`). The candidate's come from CI (run on a replay of
//! traffic or on the golden set); the reference is by default what CI
//! attached when the incumbent was released. Each feature the params name
//! is compared on its own (features not named are ignored):
//!
//! | kind | statistics | drifted when |
//! | --- | --- | --- |
//! | `numeric` | population stability index over `bins` bins cut at the reference's quantiles (`psi[NAME]`); two-sided two-sample Kolmogorov-Smirnov test (`ks_d[NAME]`, `ks_p[NAME]`) | PSI > `psi_max`, or KS p < `ks_alpha` |
//! | `categorical` | Jensen-Shannon distance (base 2, 0 to 1) between the category shares over the union of both sides' categories (`js[NAME]`); chi-squared test of homogeneity on the 2 × k table of counts (`chi2[NAME]`, `chi2_p[NAME]`) | JS > `js_max`, or chi-squared p < `chi2_alpha` |
//!
//! The verdict:
//!
//! - **inconclusive** when there is no reference (a first release, say),
//!   with what to attach; **pass** instead with `allow_missing_reference`;
//!   also inconclusive when a blocking feature has fewer than `min_samples`
//!   values on a side;
//! - **fail** when any blocking feature drifted;
//! - **warn** when only features with `blocking = false` drifted (or had
//!   too few values);
//! - **pass** otherwise.
//!
//! The reason names each drifted feature with the bars it crossed and what
//! moved: the three categories whose share changed most, or the mean. The
//! score is the share of stable features. Measurements: `candidate_records`,
//! `reference_records`, `features_drifted`, and per feature
//! `candidate_samples[NAME]`, `reference_samples[NAME]`, then `psi`, `ks_d`,
//! `ks_p`, `mean`, `reference_mean` (numeric) or `js`, `chi2`, `chi2_p`,
//! `categories` (categorical), each as `FIGURE[NAME]`.
//!
//! Reading the figures: the tests' p-values shrink with sample size, so on
//! large samples they flag differences too small to matter, while PSI and
//! JS measure the size of the change. Conversely, on small samples the JS
//! distance is inflated by chance: two samples of n records from the same
//! distribution over k categories show about sqrt((k - 1) / (4 n ln 2)),
//! 0.11 for 223 records and 9 categories but 0.04 for 2,000 records, so
//! keep `js_max` well above that or attach more records (the reason says
//! so when only JS was crossed near it). An alpha of 0 turns its test off.
//!
//! # Params
//!
//! | param | default | meaning |
//! | --- | --- | --- |
//! | `features` | required | table of feature name → `{ kind = "numeric" \| "categorical", psi_max = 0.2, ks_alpha = 0.01, js_max = 0.1, chi2_alpha = 0.01, blocking = true }`; `psi_max`/`ks_alpha` apply to numeric features only, `js_max`/`chi2_alpha` to categorical ones |
//! | `candidate` | `"attachment:features.jsonl"` | data source of the candidate's samples: `attachment:NAME`, `incumbent-attachment:NAME`, or a path in a granted data directory |
//! | `reference` | `"incumbent-attachment:features.jsonl"` | data source of the reference samples |
//! | `bins` | 10 | PSI bins (2 to 10,000) |
//! | `min_samples` | 30 | values a feature needs on each side to be judged |
//! | `allow_missing_reference` | false | pass, saying so, when the reference is absent |
//!
//! # Sample files
//!
//! JSON lines of objects, one record per request; a missing key or `null`
//! leaves that record out of the feature, other keys are ignored:
//!
//! ```text
//! {"output_label": "billing", "output_length": 7, "confidence": 0.91}
//! {"output_label": "outage", "output_length": 6, "confidence": 0.84}
//! ```
//!
//! Numeric values are JSON numbers; categories are strings, booleans or
//! numbers. A gate comparing one numeric feature also reads a file holding
//! a single JSON array of numbers (`[0.91, 0.84, ...]`), the cheapest form
//! for large samples. A feature with no values on either side is an error
//! naming it.
//!
//! Cost: each file is read once, by a scanner for flat records and plain
//! arrays that gives anything unusual to `serde_json`; then each numeric
//! feature is sorted (the candidate once, the reference twice: PSI and KS
//! each sort it). 2 × 100,000 numbers take about 15 ms natively, two
//! thirds of it in the statistics. One exception: when both numeric
//! samples hold at most 10,000 values and differ in size, the KS p-value is
//! exact, which costs up to about a second at 10,000 values with a large
//! difference; give the gate a `timeout_ms` to match.
//!
//! # Pipeline
//!
//! CI attaches `features.jsonl` with every submission; the gate compares it
//! with the one the incumbent was released with, and needs no capability:
//!
//! ```toml
//! [[environment]]
//! name = "production"
//!
//!   [[environment.gate]]
//!   plugin = "drift"
//!   timeout_ms = 2000
//!   params = { features = { output_label = { kind = "categorical" }, output_length = { kind = "numeric", psi_max = 0.25 }, confidence = { kind = "numeric", blocking = false } } }
//! ```
//!
//! `examples/outputs/triage-v2.features.jsonl` and
//! `triage-v4-regressed.features.jsonl` are such files (2,000 replayed
//! requests each, derived from the example candidates' outputs on the
//! golden set by `features.py` there): `triage-v2` against itself passes;
//! `triage-v4-regressed` against `triage-v2` fails, its labels shifted from
//! billing to account (JS 0.157, chi-squared p 4e-21) and its confidence
//! lower (PSI 1.01), while its answer lengths stay put.
//!
//! # Builds and capabilities
//!
//! - default: attachments only; asks for nothing, needs no manifest grant.
//! - `--features files`: `candidate` and `reference` may also be paths in a
//!   data directory (e.g. a reference kept by admins at
//!   `/reference/features.jsonl`); asks for `"files"`, which the manifest
//!   must grant with a `[[files]]` directory.
//!
//! A build is told params it cannot serve (a path) with the fix.

pub mod compare;
pub mod params;
pub mod record;
pub mod records;
pub mod report;
pub mod scan;

use gatehouse_plugin_sdk::{Description, Gate, GateRequest, Verdict, data, export_gate};

use crate::compare::compare;
pub use crate::params::Params;
use crate::report::Sides;

/// The exported gate.
pub struct Drift;

impl Gate for Drift {
    type Params = Params;

    fn describe() -> Description {
        let mut description = Description::gate(
            "drift",
            env!("CARGO_PKG_VERSION"),
            "Compares the candidate's feature distributions with a reference (PSI, KS, Jensen-Shannon, chi-squared)",
        )
        .with_params_schema(params::schema());
        if cfg!(feature = "files") {
            description = description.with_capability("files");
        }
        description
    }

    fn evaluate(_: GateRequest, params: Params) -> Result<Verdict, String> {
        judge(&params)
    }
}

export_gate!(Drift);

/// Judges `request`: reads both samples once, compares every feature.
pub fn judge(params: &Params) -> Result<Verdict, String> {
    let features = params.features();
    if !data::exists(&params.candidate) {
        let why = data::read(&params.candidate).err().unwrap_or_default();
        return Ok(Verdict::inconclusive(gatehouse_plugin_sdk::sentences(&[
            format!("no candidate samples to compare: {why}"),
        ])));
    }
    if !data::exists(&params.reference) {
        return Ok(missing_reference(params));
    }
    let candidate = records::read("candidate", &params.candidate, &features)?;
    let reference = records::read("reference", &params.reference, &features)?;
    let comparisons = features
        .iter()
        .zip(candidate.columns.iter().zip(&reference.columns))
        .map(|(feature, (c, r))| compare(feature, c, r, params.bins, params.min_samples))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(report::verdict(
        params,
        &features,
        &comparisons,
        &Sides {
            candidate: &candidate,
            reference: &reference,
        },
    ))
}

/// No reference to compare with: inconclusive, or a pass when allowed.
fn missing_reference(params: &Params) -> Verdict {
    let source = &params.reference;
    let missing = match source.strip_prefix("incumbent-attachment:") {
        Some(name) => format!(
            "no reference to compare with: the incumbent's submission has no attachment {name:?} (a first release, or the incumbent was submitted without it); attach {name} with every submission so the next release has a reference"
        ),
        None => format!(
            "no reference to compare with: {source} does not exist; create it, or point `reference` at the samples to compare with"
        ),
    };
    if params.allow_missing_reference {
        Verdict::pass(gatehouse_plugin_sdk::sentences(&[
            missing,
            "passed without comparing, as `allow_missing_reference` is set".to_string(),
        ]))
    } else {
        Verdict::inconclusive(gatehouse_plugin_sdk::sentences(&[
            missing,
            "set `allow_missing_reference = true` to let releases through meanwhile".to_string(),
        ]))
    }
}
