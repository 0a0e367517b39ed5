//! Gate that scores a candidate configuration's outputs on a golden dataset,
//! and holds it to a threshold and to the incumbent.
//!
//! # What it judges
//!
//! The dataset is JSON lines of cases (`{"id", "input", "expected", "tags",
//! "scorer"?}`, see `gatehouse_plugin_sdk::golden`). Every case's output is
//! scored in 0..=1 and passes when it reaches its pass mark. The verdict:
//!
//! - **inconclusive** when more than `max_missing` of the cases have no output,
//!   or more than `max_http_errors` of the live requests failed;
//! - **fail** when the pass rate (or the mean score, see `metric`) is below
//!   `threshold`, or when the candidate is significantly worse than the
//!   incumbent on the same cases (McNemar's exact test on pass/fail, paired
//!   bootstrap on scores; one-sided at `alpha`, see [`compare`]);
//! - **pass** otherwise.
//!
//! The reason states the aggregate, the comparison, and the worst failing
//! cases (id, expected, got, score; at most five, clipped). The score is the
//! aggregate. Measurements: `cases`, `pass_rate`, `mean_score`, `missing`,
//! `http_errors`, `pass_rate[TAG]` per tag (and `mean_score[TAG]` with
//! `metric = "mean_score"`), and after a comparison `paired_cases`,
//! `worse_than_incumbent`, `better_than_incumbent`, `mcnemar_p` (two-sided),
//! `bootstrap_mean_difference`, `bootstrap_low`, `bootstrap_high` and
//! `bootstrap_resamples`.
//!
//! # Scorers
//!
//! | scorer | score | passes by default at |
//! | --- | --- | --- |
//! | `exact` | 1 when the trimmed output equals `expected` | 1.0 |
//! | `normalized` | 1 when equal after SQuAD v1.1 normalisation (lowercase, no punctuation, no a/an/the, single spaces) | 1.0 |
//! | `token_f1` | SQuAD v1.1 token F1 | 0.5 |
//! | `regex` | 1 when the trimmed output fully matches the pattern in `expected` | 1.0 |
//! | `json_schema` | 1 when the output is JSON valid against the schema in `expected`, else the `schema` param ([`json_schema`] lists the supported subset) | 1.0 |
//! | `numeric` | 1 when the first number in the output is within `abs_tol + rel_tol × abs(expected)` | 1.0 |
//!
//! Text scorers accept several right answers as an array in `expected`.
//! A case may name its own `scorer`. `case_pass` sets one pass mark for all.
//!
//! # Params
//!
//! | param | default | meaning |
//! | --- | --- | --- |
//! | `dataset` | required | data source of the cases: `attachment:NAME`, `incumbent-attachment:NAME`, or a path such as `/golden/triage.jsonl` in a granted data directory |
//! | `threshold` | required | least aggregate (0..=1) that passes |
//! | `outputs` | `"attachment:outputs.jsonl"` | data source of the candidate's outputs (`{"id", "output"}` lines); not with `live` |
//! | `live` | none | `{ base_url, max_in_flight = 8, headers = {} }`: ask the candidate's model instead (see [`live`]) |
//! | `scorer` | `"exact"` | scorer of cases that name none |
//! | `metric` | `"pass_rate"` | `"pass_rate"` or `"mean_score"`: what `threshold` holds and the verdict's score |
//! | `case_pass` | 1.0; 0.5 for `token_f1` | score a case needs to pass |
//! | `schema` | none | JSON Schema for `json_schema` cases whose `expected` is not one |
//! | `abs_tol`, `rel_tol` | 0, 1e-9 | tolerances of `numeric` |
//! | `incumbent_outputs` | `"incumbent-attachment:outputs.jsonl"` | the incumbent's outputs; when absent the gate says it did not compare |
//! | `alpha` | 0.05 | significance level of the regression tests |
//! | `bootstrap_resamples`, `seed` | 2000, 1 | the paired bootstrap's resamples and seed (fixed, so verdicts repeat) |
//! | `max_missing` | 0.05 | share of cases without output above which the verdict is inconclusive |
//! | `max_http_errors` | 0.05 | share of failed live requests above which the verdict is inconclusive |
//!
//! # Pipeline
//!
//! CI runs the candidate on the golden set and attaches `outputs.jsonl` with
//! the submission; the gate needs no capability for that:
//!
//! ```toml
//! [[environment]]
//! name = "staging"
//!
//!   [[environment.gate]]
//!   plugin = "golden-eval"
//!   timeout_ms = 5000
//!   params = { dataset = "attachment:golden.jsonl", scorer = "normalized", threshold = 0.9 }
//! ```
//!
//! Or, built with `--features files,live` (see below), the gate asks the
//! model itself, with the golden set kept where only admins change it:
//!
//! ```toml
//!   [[environment.gate]]
//!   plugin = "golden-eval"
//!   timeout_ms = 60000
//!   params = { dataset = "/golden/triage.jsonl", scorer = "normalized", threshold = 0.9, live = { base_url = "http://127.0.0.1:8089", max_in_flight = 8 } }
//! ```
//!
//! `examples/golden/triage.jsonl` is such a dataset (223 support tickets
//! to triage), with the outputs of two example candidates in
//! `examples/outputs/`: `triage-v2` passes the first pipeline above,
//! `triage-v4-regressed` fails it (pass rate 0.816, billing at 0.556) and,
//! with `triage-v2`'s outputs as the incumbent's, fails the comparison too.
//!
//! # Builds and capabilities
//!
//! The host refuses a plugin that asks for a capability its manifest does not
//! grant, and a component that imports `gatehouse:plugin/http` without the
//! grant. So each capability is a Cargo feature, and a build asks for exactly
//! what it can use:
//!
//! - default: attachments only; asks for nothing, needs no manifest grant.
//! - `--features files`: also reads data directory paths; asks for `"files"`,
//!   and the manifest must grant it with a `[[files]]` directory.
//! - `--features live`: also calls the model; asks for `"http"`, and the
//!   manifest must grant it with the endpoint under `[http] allow_hosts`.
//!
//! ```toml
//! # manifest of `cargo build --release --target wasm32-wasip2 --features files,live`
//! capabilities = ["files", "http"]
//!
//! [[files]]
//! host = "/srv/gatehouse/golden"
//! guest = "/golden"
//!
//! [http]
//! allow_hosts = ["127.0.0.1:8089"]
//! ```
//!
//! A build is told params it cannot serve (a path, `live`) with the fix.

pub mod answers;
pub mod compare;
pub mod json_schema;
pub mod live;
pub mod numeric;
pub mod params;
pub mod report;
pub mod scorecard;
pub mod scorer;
pub mod squad;

use gatehouse_plugin_sdk::{Description, Gate, GateRequest, Verdict, data, export_gate};

use crate::answers::Answers;
use crate::compare::against_incumbent;
use crate::live::ModelConfig;
pub use crate::params::Params;
use crate::report::Judged;
use crate::scorecard::Scorecard;
use crate::scorer::Scorers;

/// The exported gate.
pub struct GoldenEval;

impl Gate for GoldenEval {
    type Params = Params;

    fn describe() -> Description {
        let mut description = Description::gate(
            "golden-eval",
            env!("CARGO_PKG_VERSION"),
            "Scores the candidate's outputs on a golden dataset against a threshold and the incumbent",
        )
        .with_params_schema(params::schema());
        if cfg!(feature = "files") {
            description = description.with_capability("files");
        }
        if cfg!(feature = "live") {
            description = description.with_capability("http");
        }
        description
    }

    fn evaluate(request: GateRequest, params: Params) -> Result<Verdict, String> {
        judge(&request, &params)
    }
}

export_gate!(GoldenEval);

/// Judges `request`: reads the dataset and the answers, scores, compares.
pub fn judge(request: &GateRequest, params: &Params) -> Result<Verdict, String> {
    let dataset = data::read(&params.dataset)?;
    let cases = answers::cases(&params.dataset, &dataset)?;
    let mut scorers = Scorers::prepare(params, &params.dataset, &cases)?;

    let outputs_bytes;
    let outputs;
    let live_answers;
    let (answers, answered_by) = match (&params.live, params.outputs_source()) {
        (Some(live), _) => {
            let config = request.candidate.json()?;
            let model = match ModelConfig::from_candidate(&config) {
                Ok(model) => model,
                Err(problem) => return Ok(Verdict::fail(problem)),
            };
            live_answers = live::ask(live, &model, &cases)?;
            (Answers::live(&live_answers), "live requests")
        }
        (None, source) => {
            let source = source.unwrap_or(params::DEFAULT_OUTPUTS);
            if !data::exists(source) {
                let why = data::read(source).err().unwrap_or_default();
                return Ok(Verdict::inconclusive(format!("no outputs to score: {why}")));
            }
            outputs_bytes = data::read(source)?;
            outputs = answers::outputs(source, &outputs_bytes, &cases)?;
            (Answers::attached(&cases, &outputs), source)
        }
    };

    let card = Scorecard::score(&cases, &mut scorers, &answers);
    let incumbent = against_incumbent(params, &cases, &mut scorers, &card)?;
    Ok(report::verdict(&Judged {
        params,
        cases: &cases,
        answers: &answers,
        scorers: &scorers,
        card: &card,
        incumbent: &incumbent,
        answered_by,
    }))
}
