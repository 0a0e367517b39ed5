//! One actor per environment: the adapter calls that act on an environment
//! (apply, traffic, rollback, the drift check's read, a drill) run one at a
//! time, in order of arrival, whoever makes them.
//!
//! Rules:
//! - Every adapter call takes its environment's turn first and holds it for
//!   that one attempt; a retry queues again, so a failing adapter never
//!   holds others up through its back-off.
//! - Turns are fair (tokio's mutex queues waiters in order).
//! - This orders calls inside one daemon. Which release may act on an
//!   environment at all is decided in the store before any call (see
//!   `pipeline::holds`), so it holds across restarts too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
pub struct Effects {
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Effects {
    /// Waits for `env`'s turn; the environment is this caller's until the
    /// guard drops.
    pub async fn turn(&self, env: &str) -> OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
            turns.entry(env.to_string()).or_default().clone()
        };
        turn.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_to_one_environment_never_overlap_and_others_run_beside() {
        let effects = Arc::new(Effects::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut calls = Vec::new();
        for _ in 0..8 {
            let (effects, inside, most) = (effects.clone(), inside.clone(), most.clone());
            calls.push(tokio::spawn(async move {
                let _turn = effects.turn("staging").await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        // Another environment's turn is free meanwhile.
        let other = tokio::time::timeout(Duration::from_secs(1), effects.turn("production")).await;
        assert!(other.is_ok(), "production waited behind staging");
        for c in calls {
            c.await.expect("call");
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }
}
