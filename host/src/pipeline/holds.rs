//! Which release may act on an environment, decided in the store before any
//! adapter call: state before effect, for applies and canaries alike.
//!
//! Rules:
//! - A release holds the environment of its stage while it is `Applying`
//!   or in its `Canary` there; no other release calls that environment's
//!   adapter meanwhile (operators' rollbacks and drills excepted: they are
//!   ordered by the environment's turns, `plugins::adapter`).
//! - A release that finds the environment held **waits in line**, in order
//!   of arrival, and is never superseded: each release is judged and
//!   applied on its own merits, against whatever is live when its turn
//!   comes. Joining the line is audited (`release.waiting`, with the holder
//!   and the place) and shown in the release's status. An operator who
//!   wants the newer one first aborts the older.
//! - Every write of a release goes through [`put_release`], which lets go
//!   of each environment its new phase does not hold, in the same
//!   transaction: a holder's last phase there frees it, a waiter that is
//!   aborted leaves the line, and a restart finds holder and line as they
//!   were committed.

use crate::configstore::EnvWrites;
use crate::configstore::{ConfigStore, Turn};
use crate::pipeline::release::{Phase, Release, ReleaseId, ReleaseWrites};
use crate::store::{Tx, TxResult};

/// The environment `phase` holds, if any.
pub fn held_by(release: &Release) -> Option<&str> {
    match release.phase {
        Phase::Applying { stage } | Phase::Canary { stage, .. } => Some(release.environment(stage)),
        _ => None,
    }
}

/// Writes the release and lets go of every environment of its pipeline that
/// its phase does not hold.
pub fn put_release(tx: &Tx<'_>, release: &Release) -> TxResult<()> {
    let held = held_by(release);
    if held.is_none() && release.waiting.is_some() {
        let mut done = release.clone();
        done.waiting = None;
        tx.put_release(&done)?;
    } else {
        tx.put_release(release)?;
    }
    for env in &release.pipeline.environments {
        if held != Some(env.name.as_str()) {
            ConfigStore::let_go_in(tx, &env.name, release.id)?;
        }
    }
    Ok(())
}

/// At start, before any release resumes: lets go of holds and places in
/// line that no release's phase explains any more, and gives a canary that
/// runs without a holder (a data directory from before holds) its
/// environment back, so two releases never act on one environment.
pub fn settle_at_start(tx: &Tx<'_>, envs: &[String], unfinished: &[ReleaseId]) -> TxResult<()> {
    for env in envs {
        let Some(state) = tx.environment(env)? else {
            continue;
        };
        for id in state.holder.iter().chain(&state.waiting) {
            let holds_it = match tx.release(*id) {
                Ok(r) => held_by(&r) == Some(env.as_str()),
                Err(_) => false,
            };
            if !holds_it {
                ConfigStore::let_go_in(tx, env, *id)?;
            }
        }
    }
    for id in unfinished {
        let r = tx.release(*id)?;
        if let (Phase::Canary { .. }, Some(env)) = (&r.phase, held_by(&r))
            && tx.environment(env)?.is_none_or(|s| s.holder.is_none())
        {
            ConfigStore::claim_in(tx, env, r.id)?;
        }
    }
    Ok(())
}

/// Takes the release's current environment, or puts it in line; the
/// release's `waiting` note says which, and it is written with it.
pub fn claim(tx: &Tx<'_>, release: &mut Release) -> TxResult<Turn> {
    let Some(env) = held_by(release).map(str::to_string) else {
        return Ok(Turn::Held);
    };
    let turn = ConfigStore::claim_in(tx, &env, release.id)?;
    let waiting = match &turn {
        Turn::Held => None,
        Turn::Waiting { holder, place, .. } => Some(match holder {
            Some(h) => {
                format!("waiting for {env}: release {h} is acting on it; place {place} in line")
            }
            None => format!("waiting for {env}: place {place} in line"),
        }),
    };
    if release.waiting != waiting {
        release.waiting = waiting;
        put_release(tx, release)?;
    }
    Ok(turn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configstore::EnvReads;
    use crate::digest::Digest;
    use crate::pipeline::Pipeline;
    use crate::pipeline::definition::tests::fixed_catalog;
    use crate::pipeline::release::ReleaseId;
    use crate::store::Store;
    use std::collections::BTreeMap;

    fn release(id: u64) -> Release {
        let text =
            "name = \"p\"\n[[environment]]\nname = \"dev\"\n[[environment]]\nname = \"prod\"\n";
        let p = Pipeline::parse("p.toml", text, &fixed_catalog()).expect("pipeline");
        let mut r = Release::new(
            ReleaseId(id),
            p,
            Digest::of(&id.to_be_bytes()),
            BTreeMap::new(),
            "ci".into(),
            0,
        );
        r.phase = Phase::Applying { stage: 1 };
        r
    }

    async fn claimed(store: &Store, r: &mut Release) -> Turn {
        let (turn, written) = store
            .commit(|tx| {
                let mut r = r.clone();
                put_release(tx, &r)?;
                let turn = claim(tx, &mut r)?;
                Ok((turn, r))
            })
            .await
            .expect("commit");
        *r = written;
        turn
    }

    async fn moved(store: &Store, r: &mut Release, phase: Phase) {
        r.phase = phase;
        store.commit(|tx| put_release(tx, r)).await.expect("commit");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn releases_take_an_environment_in_order_of_arrival() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("store");
        let (mut a, mut b, mut c) = (release(1), release(2), release(3));
        assert_eq!(claimed(&store, &mut a).await, Turn::Held);
        let waiting = |holder: u64, place: usize, joined: bool| Turn::Waiting {
            holder: Some(ReleaseId(holder)),
            place,
            joined,
        };
        assert_eq!(claimed(&store, &mut b).await, waiting(1, 1, true));
        assert_eq!(claimed(&store, &mut c).await, waiting(1, 2, true));
        // Asking again keeps the place, and joins only once.
        assert_eq!(claimed(&store, &mut c).await, waiting(1, 2, false));
        assert_eq!(
            c.waiting.as_deref(),
            Some("waiting for prod: release 1 is acting on it; place 2 in line")
        );
        // The third cannot jump the line once the holder lets go.
        moved(&store, &mut a, Phase::Succeeded).await;
        assert!(matches!(
            claimed(&store, &mut c).await,
            Turn::Waiting {
                holder: None,
                place: 2,
                ..
            }
        ));
        assert_eq!(claimed(&store, &mut b).await, Turn::Held);
        assert_eq!(b.waiting, None);
        // A waiter that is aborted leaves the line.
        moved(
            &store,
            &mut c,
            Phase::Aborted {
                stage: Some(1),
                reason: "no".into(),
            },
        )
        .await;
        let state = store.environment("prod").expect("read").expect("state");
        assert_eq!((state.holder, state.waiting), (Some(ReleaseId(2)), vec![]));
        // A drill takes the environment only when it is free.
        let drill = |id: u64| {
            let store = store.clone();
            async move {
                store
                    .commit(|tx| ConfigStore::take_if_free_in(tx, "prod", ReleaseId(id)))
                    .await
                    .expect("commit")
            }
        };
        assert_eq!(drill(9).await, Err(ReleaseId(2)));
        // Promoted there, the holder lets go.
        moved(&store, &mut b, Phase::Promoted { stage: 1 }).await;
        let state = store.environment("prod").expect("read").expect("state");
        assert_eq!(state.holder, None);
        assert_eq!(drill(9).await, Ok(()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_start_stale_holds_are_let_go_and_a_canary_gets_its_environment() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("store");
        let (mut a, mut b) = (release(1), release(2));
        assert_eq!(claimed(&store, &mut a).await, Turn::Held);
        // As a data directory from before holds: the holder finished
        // without letting go, and a canary runs without holding.
        a.phase = Phase::Succeeded;
        b.phase = Phase::Canary {
            stage: 1,
            step: 0,
            extensions: 0,
            hold: Default::default(),
        };
        store
            .commit(|tx| {
                tx.put_release(&a)?;
                tx.put_release(&b)
            })
            .await
            .expect("commit");
        let envs = ["dev".to_string(), "prod".to_string()];
        store
            .commit(|tx| settle_at_start(tx, &envs, &[b.id]))
            .await
            .expect("settle");
        let state = store.environment("prod").expect("read").expect("state");
        assert_eq!((state.holder, state.waiting), (Some(b.id), vec![]));
    }
}
