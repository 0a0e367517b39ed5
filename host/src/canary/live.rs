//! Running canaries: where serving services' observations land, the interim
//! look after every batch, and the trigger that tells a release's executor
//! to roll back.
//!
//! Rules: ingest takes one lock per batch, never one per observation, and
//! writes nothing to disk — a window lives in memory and is lost with the
//! daemon (the executor then restarts the step's observation and says so in
//! the audit log). The window's lock is a tokio mutex, so while a final look
//! sorts a large window on a blocking thread, ingest waits without holding a
//! reactor thread. The trigger fires once per canary; acting on it (persist,
//! then restore) is the executor's job, never the ingest path's.

use super::{
    Arm, ArmSummary, Canary, CanaryConfig, Decision, Judgement, Look, Observation, SourceEvidence,
};
use crate::store::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What a running canary compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A canary step: the candidate beside the configuration that is live.
    Step,
    /// The watch after full promotion: the promoted configuration against
    /// what the baseline served during the last step (kept as a summary).
    /// Services report the promoted configuration as the baseline arm, since
    /// it is what is live; it is judged as the canary arm.
    Watch,
}

/// Which canary a snapshot is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub release: u64,
    pub environment: String,
    pub stage: usize,
    pub step: usize,
    pub weight_percent: u32,
    pub mode: Mode,
}

/// A judgement, with which canary it judged and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(flatten)]
    pub position: Position,
    pub at_ms: i64,
    /// True for the judgement the canary ended with.
    pub last: bool,
    pub judgement: Judgement,
}

/// What became of one batch of observations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    pub accepted: u64,
    /// For no running canary, or for another release's.
    pub dropped: u64,
    /// Numbers no test can judge.
    pub rejected: u64,
    /// Why the first rejected observation was refused.
    pub rejection: Option<String>,
}

impl Ingested {
    pub fn add(&mut self, other: Ingested) {
        self.accepted += other.accepted;
        self.dropped += other.dropped;
        self.rejected += other.rejected;
        if self.rejection.is_none() {
            self.rejection = other.rejection;
        }
    }
}

type Latest = watch::Sender<Option<Arc<Snapshot>>>;

/// One canary step (or watch) that observations feed.
pub struct RunningCanary {
    pub position: Position,
    /// When this canary started observing: where a metric source's series
    /// begin.
    pub opened_ms: i64,
    canary: Arc<tokio::sync::Mutex<Canary>>,
    deadline: Mutex<Instant>,
    trigger: Latest,
    feed: Latest,
}

impl RunningCanary {
    /// Adds a batch, then takes an interim look; fires the trigger when the
    /// look says roll back.
    pub async fn ingest(
        &self,
        batch: impl IntoIterator<Item = Result<Observation, String>>,
    ) -> Ingested {
        let mut out = Ingested::default();
        let watch = self.position.mode == Mode::Watch;
        let mut canary = self.canary.lock().await;
        for o in batch {
            let mut o = match o {
                Ok(o) => o,
                Err(reason) => {
                    out.rejected += 1;
                    out.rejection.get_or_insert(reason);
                    continue;
                }
            };
            if watch {
                // Nothing runs beside the promoted configuration now.
                if o.arm == Arm::Canary {
                    out.dropped += 1;
                    continue;
                }
                o.arm = Arm::Canary;
            }
            match canary.observe(o) {
                Ok(()) => out.accepted += 1,
                Err(e) => {
                    out.rejected += 1;
                    out.rejection.get_or_insert_with(|| e.to_string());
                }
            }
        }
        if out.accepted == 0 {
            return out;
        }
        let judgement = canary.judge(Look::Interim);
        drop(canary);
        let rolls_back = judgement.decision == Decision::RollBack;
        let snapshot = Arc::new(self.snapshot(judgement, false));
        self.feed.send_replace(Some(snapshot.clone()));
        if rolls_back {
            self.trigger.send_if_modified(|fired| {
                let first = fired.is_none();
                if first {
                    *fired = Some(snapshot);
                }
                first
            });
        }
        out
    }

    /// The final look: every test, the score, the decision. Sorting a large
    /// window takes milliseconds, so it runs on a blocking thread.
    pub async fn look_final(&self) -> Result<Arc<Snapshot>, String> {
        self.look_final_with(None).await
    }

    /// The final look, with what a metric source reported beside the
    /// observations.
    pub async fn look_final_with(
        &self,
        source: Option<SourceEvidence>,
    ) -> Result<Arc<Snapshot>, String> {
        let guard = self.canary.clone().lock_owned().await;
        let judgement = tokio::task::spawn_blocking(move || {
            let mut canary = guard;
            canary.judge_with(Look::Final, source)
        })
        .await
        .map_err(|e| format!("the final look did not complete: {e}"))?;
        let snapshot = Arc::new(self.snapshot(judgement, false));
        self.feed.send_replace(Some(snapshot.clone()));
        Ok(snapshot)
    }

    /// Resolves with the judgement that fired the trigger.
    pub async fn triggered(&self) -> Arc<Snapshot> {
        let mut rx = self.trigger.subscribe();
        loop {
            if let Some(s) = rx.borrow_and_update().clone() {
                return s;
            }
            if rx.changed().await.is_err() {
                // Cannot happen while `self` holds the sender; wait forever
                // rather than report a rollback nobody decided.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The judgement that fired the trigger, if it has fired.
    pub fn fired(&self) -> Option<Arc<Snapshot>> {
        self.trigger.borrow().clone()
    }

    /// When the current observation period ends.
    pub fn deadline(&self) -> Instant {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Observes for another `period`, from now.
    pub fn extend(&self, period: Duration) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now() + period;
    }

    /// What the baseline arm has served so far.
    pub async fn baseline(&self) -> ArmSummary {
        self.canary.lock().await.window().baseline().summary()
    }

    /// The latest judgement, if any look was taken.
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        self.feed.borrow().clone()
    }

    /// A snapshot of `judgement` at this canary's position.
    pub fn snapshot(&self, judgement: Judgement, last: bool) -> Snapshot {
        Snapshot {
            position: self.position.clone(),
            at_ms: now_ms(),
            last,
            judgement,
        }
    }
}

/// Every running canary, by environment (one canary per environment), and
/// a judgement feed per release that outlives its steps.
#[derive(Default)]
pub struct Board {
    by_environment: RwLock<HashMap<String, Arc<RunningCanary>>>,
    feeds: Mutex<HashMap<u64, Latest>>,
    dropped: AtomicU64,
}

impl Board {
    /// The canary at `position`, started now if it is not running (then
    /// judged after `period`, against `control` when watching). Returns it
    /// and whether it was started by this call.
    pub fn open(
        &self,
        position: Position,
        config: CanaryConfig,
        control: Option<&ArmSummary>,
        period: Duration,
    ) -> (Arc<RunningCanary>, bool) {
        let mut map = self.write();
        if let Some(r) = map.get(&position.environment)
            && r.position == position
        {
            return (r.clone(), false);
        }
        let feed = self
            .lock_feeds()
            .entry(position.release)
            .or_insert_with(|| watch::channel(None).0)
            .clone();
        let canary = match control {
            Some(c) => Canary::against(config, c),
            None => Canary::new(config),
        };
        let running = Arc::new(RunningCanary {
            position: position.clone(),
            opened_ms: now_ms(),
            canary: Arc::new(tokio::sync::Mutex::new(canary)),
            deadline: Mutex::new(Instant::now() + period),
            trigger: watch::channel(None).0,
            feed,
        });
        map.insert(position.environment, running.clone());
        (running, true)
    }

    /// The canary running in `environment`.
    pub fn running(&self, environment: &str) -> Option<Arc<RunningCanary>> {
        self.read().get(environment).cloned()
    }

    /// Every canary running now, by environment.
    pub fn all(&self) -> Vec<Arc<RunningCanary>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.position.environment.cmp(&b.position.environment));
        all
    }

    /// The canary of `release`, wherever it runs.
    pub fn of_release(&self, release: u64) -> Option<Arc<RunningCanary>> {
        self.read()
            .values()
            .find(|r| r.position.release == release)
            .cloned()
    }

    /// Feeds a batch to the canary running in `environment`. `release` 0
    /// matches any; another release than the running one's is dropped (the
    /// service still routes by an older configuration).
    pub async fn ingest<I>(&self, environment: &str, release: u64, batch: I) -> Ingested
    where
        I: IntoIterator<Item = Result<Observation, String>>,
        I::IntoIter: ExactSizeIterator,
    {
        let batch = batch.into_iter();
        match self.running(environment) {
            Some(r) if release == 0 || release == r.position.release => r.ingest(batch).await,
            _ => {
                let dropped = batch.len() as u64;
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
                Ingested {
                    dropped,
                    ..Ingested::default()
                }
            }
        }
    }

    /// Observations dropped since start for want of a matching canary.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Ends `release`'s canary: stops taking its observations, hands its
    /// last judgement to watchers, and closes their feed.
    pub fn end(&self, release: u64, last: Option<Snapshot>) {
        self.write().retain(|_, r| r.position.release != release);
        if let Some(feed) = self.lock_feeds().remove(&release)
            && let Some(mut s) = last
        {
            s.last = true;
            feed.send_replace(Some(Arc::new(s)));
        }
    }

    /// The judgement feed of `release`, while its canary runs.
    pub fn feed(&self, release: u64) -> Option<watch::Receiver<Option<Arc<Snapshot>>>> {
        self.lock_feeds().get(&release).map(|f| f.subscribe())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<RunningCanary>>> {
        self.by_environment
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<RunningCanary>>> {
        self.by_environment
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn lock_feeds(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Latest>> {
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(release: u64, mode: Mode) -> Position {
        Position {
            release,
            environment: "prod".into(),
            stage: 0,
            step: 0,
            weight_percent: 10,
            mode,
        }
    }

    fn batch(arm: Arm, n: usize, error_every: usize) -> Vec<Result<Observation, String>> {
        (0..n)
            .map(|i| {
                Ok(Observation {
                    error: error_every > 0 && i % error_every == 0,
                    ..Observation::latency(arm, 10.0 + (i % 7) as f64)
                })
            })
            .collect()
    }

    #[tokio::test]
    async fn observations_for_no_canary_or_another_release_are_dropped_and_counted() {
        let board = Board::default();
        let got = board.ingest("prod", 0, batch(Arm::Canary, 5, 0)).await;
        assert_eq!((got.accepted, got.dropped), (0, 5));
        board.open(
            position(7, Mode::Step),
            CanaryConfig::default(),
            None,
            Duration::from_secs(60),
        );
        let got = board.ingest("prod", 8, batch(Arm::Canary, 3, 0)).await;
        assert_eq!((got.accepted, got.dropped), (0, 3));
        let got = board.ingest("prod", 7, batch(Arm::Canary, 4, 0)).await;
        assert_eq!((got.accepted, got.dropped), (4, 0));
        assert_eq!(board.dropped(), 8);
    }

    #[tokio::test]
    async fn unjudgeable_numbers_are_rejected_with_the_reason() {
        let board = Board::default();
        board.open(
            position(1, Mode::Step),
            CanaryConfig::default(),
            None,
            Duration::from_secs(60),
        );
        let got = board
            .ingest(
                "prod",
                1,
                vec![
                    Ok(Observation::latency(Arm::Baseline, f64::NAN)),
                    Err("arm is unspecified".into()),
                    Ok(Observation::latency(Arm::Baseline, 3.0)),
                ],
            )
            .await;
        assert_eq!((got.accepted, got.rejected), (1, 2));
        assert!(got.rejection.unwrap().contains("latency_ms"));
    }

    #[tokio::test]
    async fn error_spike_fires_the_trigger_once_with_its_evidence() {
        let board = Board::default();
        let (running, fresh) = board.open(
            position(3, Mode::Step),
            CanaryConfig::default(),
            None,
            Duration::from_secs(60),
        );
        assert!(fresh);
        board.ingest("prod", 3, batch(Arm::Baseline, 200, 0)).await;
        board.ingest("prod", 3, batch(Arm::Canary, 200, 2)).await;
        let fired = tokio::time::timeout(Duration::from_secs(1), running.triggered())
            .await
            .expect("the trigger fired");
        assert_eq!(fired.judgement.decision, Decision::RollBack);
        assert!(fired.judgement.reason.contains("error_rate"));
        // Reopening the same position keeps the same window and trigger.
        let (again, fresh) = board.open(
            position(3, Mode::Step),
            CanaryConfig::default(),
            None,
            Duration::from_secs(60),
        );
        assert!(!fresh);
        assert_eq!(again.latest().unwrap().judgement.canary_n, 200);
    }

    #[tokio::test]
    async fn watch_judges_the_live_arm_against_the_kept_baseline() {
        let mut control = Canary::new(CanaryConfig::default());
        for o in batch(Arm::Baseline, 400, 0) {
            control.observe(o.unwrap()).unwrap();
        }
        let summary = control.window().baseline().summary();
        let board = Board::default();
        let (running, _) = board.open(
            position(4, Mode::Watch),
            CanaryConfig::default(),
            Some(&summary),
            Duration::from_secs(60),
        );
        // The promoted configuration is what is live: reported as baseline.
        let got = board.ingest("prod", 4, batch(Arm::Baseline, 300, 2)).await;
        assert_eq!(got.accepted, 300);
        let got = board.ingest("prod", 4, batch(Arm::Canary, 5, 0)).await;
        assert_eq!(got.dropped, 5);
        let fired = tokio::time::timeout(Duration::from_secs(1), running.triggered())
            .await
            .expect("the trigger fired");
        let errors = fired
            .judgement
            .metric(crate::canary::Metric::ErrorRate)
            .unwrap();
        assert_eq!((errors.baseline_n, errors.canary_n), (400, 300));
    }

    #[tokio::test]
    async fn ending_a_canary_hands_watchers_its_last_judgement_then_closes() {
        let board = Board::default();
        let (running, _) = board.open(
            position(5, Mode::Step),
            CanaryConfig::default(),
            None,
            Duration::from_secs(60),
        );
        let mut feed = board.feed(5).unwrap();
        let last = running.look_final().await.unwrap();
        assert!(feed.changed().await.is_ok());
        drop(running);
        board.end(5, Some((*last).clone()));
        assert!(feed.changed().await.is_ok());
        assert!(feed.borrow().as_ref().unwrap().last);
        assert!(feed.changed().await.is_err());
        assert!(board.running("prod").is_none());
    }
}
