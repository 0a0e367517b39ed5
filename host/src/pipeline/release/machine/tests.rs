//! The machine's rules, checked on releases reached by random walks of
//! events from a fresh release (proptest), plus the examples that name them.

use super::*;
use crate::digest::Digest;
use crate::pipeline::definition::Pipeline;
use crate::pipeline::definition::tests::fixed_catalog;
use crate::pipeline::release::{Outcome, ReleaseId};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Three stages: dev (no approval), staging (one approval and a two-step
/// canary that pauses when undecided, one extension), prod (two
/// approvals, four eyes).
const PIPELINE: &str = r#"
name = "p"
four_eyes = true

[[environment]]
name = "dev"

[[environment]]
name = "staging"
approvals = 1
  [environment.canary]
  steps = [10, 50]
  on_inconclusive = "pause"
  max_extensions = 1

[[environment]]
name = "prod"
approvals = 2
"#;

fn fresh() -> Release {
    let p = Pipeline::parse("p.toml", PIPELINE, &fixed_catalog()).expect("pipeline");
    Release::new(
        ReleaseId(7),
        p,
        Digest::of(b"candidate"),
        BTreeMap::new(),
        "ci".into(),
        0,
    )
}

fn record(outcome: Outcome, blocking: bool) -> GateRecord {
    GateRecord {
        gate: "lint".into(),
        plugin: "config-lint".into(),
        plugin_digest: None,
        outcome,
        score: 0.0,
        measurements: Vec::new(),
        reason: "said so".into(),
        blocking,
        duration_us: 1,
        fuel_used: None,
        failure: None,
    }
}

/// An event with what it borrows, so a strategy can make one.
#[derive(Debug, Clone)]
enum Happening {
    Started,
    Misconfigured,
    Gates(Vec<GateRecord>),
    Approved { env: &'static str, by: &'static str },
    ApprovalsCounted,
    Placed(bool),
    Step(Step),
    Watched,
    EffectFailed,
    RolledBack,
    Aborted,
    Resumed,
}

impl Happening {
    fn event(&self) -> Event<'_> {
        match self {
            Happening::Started => Event::Started,
            Happening::Misconfigured => Event::Misconfigured {
                gate: Some("lint".into()),
                reason: "refuses param `x`".into(),
            },
            Happening::Gates(records) => Event::GatesJudged { records },
            Happening::Approved { env, by } => Event::Approved {
                environment: env,
                by,
            },
            Happening::ApprovalsCounted => Event::ApprovalsCounted,
            Happening::Placed(canary) => Event::Placed { canary: *canary },
            Happening::Step(s) => Event::StepJudged(*s),
            Happening::Watched => Event::Watched,
            Happening::EffectFailed => Event::EffectFailed {
                reason: "adapter down".into(),
            },
            Happening::RolledBack => Event::RolledBack {
                reason: "regressed".into(),
            },
            Happening::Aborted => Event::Aborted {
                reason: "aborted by alice".into(),
            },
            Happening::Resumed => Event::Resumed,
        }
    }
}

fn happening() -> impl Strategy<Value = Happening> {
    let outcome = prop_oneof![
        Just(Outcome::Pass),
        Just(Outcome::Warn),
        Just(Outcome::Fail),
        Just(Outcome::Inconclusive)
    ];
    let gates = prop::collection::vec(
        (outcome, any::<bool>()).prop_map(|(o, b)| record(o, b)),
        0..3,
    );
    let env = prop_oneof![Just("dev"), Just("staging"), Just("prod")];
    let by = prop_oneof![Just("alice"), Just("bob"), Just("ci")];
    // The events that move a release on come more often than those that
    // end it, so walks reach the later stages.
    prop_oneof![
        3 => Just(Happening::Started),
        1 => Just(Happening::Misconfigured),
        6 => gates.prop_map(Happening::Gates),
        6 => (env, by).prop_map(|(env, by)| Happening::Approved { env, by }),
        4 => Just(Happening::ApprovalsCounted),
        5 => any::<bool>().prop_map(Happening::Placed),
        6 => prop_oneof![Just(Step::Passed), Just(Step::Extended), Just(Step::Paused)]
            .prop_map(Happening::Step),
        3 => Just(Happening::Watched),
        1 => Just(Happening::EffectFailed),
        1 => Just(Happening::RolledBack),
        1 => Just(Happening::Aborted),
        2 => Just(Happening::Resumed),
    ]
}

/// Applies what the machine decided as the executor and the operators
/// commit it: the phase, and the records an event carries.
fn apply(r: &mut Release, h: &Happening, next: Phase) {
    match h {
        Happening::Gates(records) => {
            if let Some(stage) = r.phase.stage() {
                r.stages[stage].gates = records.clone();
            }
        }
        Happening::Approved { by, .. } => {
            if let Phase::AwaitingApproval { stage } = r.phase {
                r.stages[stage].approved_by.push(by.to_string());
            }
        }
        _ => {}
    }
    r.phase = next;
}

/// Every release a walk of `happenings` reaches, the fresh one first.
fn walk(happenings: &[Happening]) -> Vec<Release> {
    let mut r = fresh();
    let mut seen = vec![r.clone()];
    for h in happenings {
        if let Ok(next) = transition(&r, &h.event()) {
            apply(&mut r, h, next);
            seen.push(r.clone());
        }
    }
    seen
}

/// One of each kind of event, for checks that ask every event.
fn every_event() -> Vec<Happening> {
    vec![
        Happening::Started,
        Happening::Misconfigured,
        Happening::Gates(vec![record(Outcome::Pass, true)]),
        Happening::Gates(vec![record(Outcome::Fail, true)]),
        Happening::Approved {
            env: "staging",
            by: "alice",
        },
        Happening::Approved {
            env: "prod",
            by: "bob",
        },
        Happening::Approved {
            env: "prod",
            by: "ci",
        },
        Happening::ApprovalsCounted,
        Happening::Placed(true),
        Happening::Placed(false),
        Happening::Step(Step::Passed),
        Happening::Step(Step::Extended),
        Happening::Step(Step::Paused),
        Happening::Watched,
        Happening::EffectFailed,
        Happening::RolledBack,
        Happening::Aborted,
        Happening::Resumed,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn terminal_phases_absorb_every_event(hs in prop::collection::vec(happening(), 0..40)) {
        for r in walk(&hs).iter().filter(|r| r.phase.is_terminal()) {
            for h in every_event() {
                prop_assert!(transition(r, &h.event()).is_err(), "{:?} moved on {:?}", r.phase, h);
            }
        }
    }

    #[test]
    fn approvals_are_accepted_only_where_a_stage_waits(hs in prop::collection::vec(happening(), 0..40)) {
        for r in walk(&hs) {
            for h in every_event().iter().filter(|h| matches!(h, Happening::Approved { .. })) {
                if transition(&r, &h.event()).is_ok() {
                    prop_assert!(
                        matches!(
                            r.phase,
                            Phase::AwaitingApproval { .. }
                                | Phase::Canary { hold: CanaryHold::Paused, .. }
                        ),
                        "approved in {:?}",
                        r.phase
                    );
                }
            }
        }
    }

    #[test]
    fn every_reachable_phase_resumes_after_a_crash_to_the_same_decision(
        hs in prop::collection::vec(happening(), 0..40)
    ) {
        for r in walk(&hs) {
            // What a restarted daemon reads: the release as stored.
            let stored = serde_json::to_vec(&r).expect("encode");
            let read_back: Release = serde_json::from_slice(&stored).expect("decode");
            for h in every_event() {
                prop_assert_eq!(transition(&r, &h.event()), transition(&read_back, &h.event()));
            }
            if !r.phase.is_terminal() {
                prop_assert_eq!(transition(&read_back, &Event::Resumed), Ok(r.phase.clone()));
            }
        }
    }

    #[test]
    fn rollback_is_possible_from_every_non_terminal_canary_hold(
        step in 0usize..2,
        extensions in 0u32..2,
        hold in prop_oneof![
            Just(CanaryHold::Observing),
            Just(CanaryHold::Paused),
            Just(CanaryHold::Approved)
        ],
    ) {
        let mut r = fresh();
        r.phase = Phase::Canary { stage: 1, step, extensions, hold };
        prop_assert_eq!(
            transition(&r, &Event::RolledBack { reason: "regressed".into() }),
            Ok(Phase::RolledBack { stage: Some(1), reason: "regressed".into() })
        );
    }

    #[test]
    fn a_release_never_goes_back_a_stage(hs in prop::collection::vec(happening(), 0..40)) {
        let seen = walk(&hs);
        for pair in seen.windows(2) {
            if let (Some(a), Some(b)) = (pair[0].phase.stage(), pair[1].phase.stage()) {
                prop_assert!(b >= a, "{:?} → {:?}", pair[0].phase, pair[1].phase);
            }
        }
    }
}

#[test]
fn a_walk_that_passes_everything_succeeds_through_every_stage() {
    let pass = [record(Outcome::Pass, true)];
    let mut r = fresh();
    let go = |r: &mut Release, e: Event<'_>| {
        let next = transition(r, &e).unwrap_or_else(|e| panic!("{e}"));
        if let (Event::Approved { by, .. }, Phase::AwaitingApproval { stage }) = (&e, &r.phase) {
            r.stages[*stage].approved_by.push(by.to_string());
        }
        r.phase = next;
    };
    go(&mut r, Event::Started);
    go(&mut r, Event::GatesJudged { records: &pass });
    assert_eq!(r.phase, Phase::Applying { stage: 0 });
    go(&mut r, Event::Placed { canary: false });
    go(&mut r, Event::Watched);
    go(&mut r, Event::GatesJudged { records: &pass });
    assert_eq!(r.phase, Phase::AwaitingApproval { stage: 1 });
    go(
        &mut r,
        Event::Approved {
            environment: "staging",
            by: "alice",
        },
    );
    go(&mut r, Event::ApprovalsCounted);
    go(&mut r, Event::Placed { canary: true });
    go(&mut r, Event::StepJudged(Step::Paused));
    go(
        &mut r,
        Event::Approved {
            environment: "staging",
            by: "bob",
        },
    );
    assert!(matches!(
        r.phase,
        Phase::Canary {
            hold: CanaryHold::Approved,
            ..
        }
    ));
    go(&mut r, Event::StepJudged(Step::Passed));
    assert!(matches!(r.phase, Phase::Canary { step: 1, .. }));
    go(&mut r, Event::StepJudged(Step::Passed));
    assert_eq!(r.phase, Phase::Promoted { stage: 1 });
    go(&mut r, Event::Watched);
    go(&mut r, Event::GatesJudged { records: &pass });
    go(
        &mut r,
        Event::Approved {
            environment: "prod",
            by: "alice",
        },
    );
    go(&mut r, Event::ApprovalsCounted);
    assert_eq!(r.phase, Phase::AwaitingApproval { stage: 2 });
    go(
        &mut r,
        Event::Approved {
            environment: "prod",
            by: "bob",
        },
    );
    go(&mut r, Event::ApprovalsCounted);
    go(&mut r, Event::Placed { canary: false });
    go(&mut r, Event::Watched);
    assert_eq!(r.phase, Phase::Succeeded);
}

#[test]
fn four_eyes_refuses_the_submitter_and_a_second_approval_by_the_same_person() {
    let mut r = fresh();
    r.phase = Phase::AwaitingApproval { stage: 2 };
    let by_ci = transition(
        &r,
        &Event::Approved {
            environment: "prod",
            by: "ci",
        },
    );
    assert!(matches!(by_ci, Err(Refusal::Precondition(m)) if m.contains("four eyes")));
    r.stages[2].approved_by.push("alice".into());
    let again = transition(
        &r,
        &Event::Approved {
            environment: "prod",
            by: "alice",
        },
    );
    assert!(matches!(again, Err(Refusal::Precondition(m)) if m.contains("already approved")));
    let elsewhere = transition(
        &r,
        &Event::Approved {
            environment: "dev",
            by: "bob",
        },
    );
    assert!(matches!(elsewhere, Err(Refusal::Precondition(m)) if m.contains("not dev")));
}

#[test]
fn a_blocking_gate_that_does_not_let_through_fails_the_stage_and_a_warning_does_not() {
    let mut r = fresh();
    r.phase = Phase::Gating { stage: 0 };
    let failing = [record(Outcome::Inconclusive, true)];
    assert!(matches!(
        transition(&r, &Event::GatesJudged { records: &failing }),
        Ok(Phase::Failed { gate: Some(g), misconfigured: false, .. }) if g == "lint"
    ));
    let advisory = [record(Outcome::Fail, false), record(Outcome::Warn, true)];
    assert_eq!(
        transition(&r, &Event::GatesJudged { records: &advisory }),
        Ok(Phase::Applying { stage: 0 })
    );
}

#[test]
fn an_extension_is_refused_once_the_step_has_used_its_own() {
    let mut r = fresh();
    r.phase = Phase::Canary {
        stage: 1,
        step: 0,
        extensions: 1,
        hold: CanaryHold::Observing,
    };
    assert!(transition(&r, &Event::StepJudged(Step::Extended)).is_err());
}
