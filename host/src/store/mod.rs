//! Everything the daemon must not forget, in sled: releases, candidates, the
//! audit log, what is live in each environment. Plugin bytes and compiled
//! artefacts are files beside sled, each written before the record naming it
//! (see `plugins`).
//!
//! Rules: every change goes through [`Store::commit`], one sled transaction
//! across all trees that also appends its audit events, flushed to disk before
//! `commit` returns — so a caller may act on a state only once it is durable.
//! Events are announced on the bus only after that flush.

pub mod audit;
mod plugin_files;
mod plugins;

use crate::configstore::EnvState;
use crate::digest::Digest;
use crate::pipeline::release::{Release, ReleaseId};
use audit::{AuditEvent, Draft, Head, Verification};
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::broadcast;

const HEAD_KEY: &[u8] = b"audit_head";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the store failed: {0}; check free disk space and permissions of the data directory")]
    Storage(#[from] sled::Error),
    #[error("stored record {key} cannot be read ({detail}); the data directory may be damaged")]
    Corrupt { key: String, detail: String },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(
        "{0} holds no Gatehouse data (no store there); check the path, or point --data-dir at the daemon's data_dir"
    )]
    NoStore(String),
    #[error(
        "{0} is held by a running daemon; ask it instead (leave out --data-dir), or stop it first"
    )]
    Held(String),
    /// A write to disk failed earlier (see [`Store::stopped`]).
    #[error("{0}")]
    Stopped(Failure),
}

/// Why the store stopped: a write to disk failed, so its memory may hold
/// what the disk does not, and nothing more goes through it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub detail: String,
    /// The disk is full (ENOSPC).
    pub space: bool,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.space {
            write!(
                f,
                "the data directory's disk is full ({}); free at least {} MiB there: the daemon restarts to carry on from what is on disk",
                self.detail, SPACE_NEEDED_MIB
            )
        } else {
            write!(
                f,
                "the store could not write to disk ({}); the daemon restarts to carry on from what is on disk",
                self.detail
            )
        }
    }
}

/// Whether sled failed because the disk is full (ENOSPC).
pub fn is_full_disk(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.raw_os_error() == Some(28) || io.kind() == std::io::ErrorKind::StorageFull)
}

/// What to free on a full disk: room for sled's next log segments and a
/// large submission (candidate and attachments, at most 32 MiB).
pub const SPACE_NEEDED_MIB: u64 = 64;

/// Why a transaction chose not to commit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Precondition(String),
    /// The record changed since the caller read it; it should re-read.
    #[error("release {0} changed meanwhile")]
    Stale(ReleaseId),
}

pub type TxResult<T> = Result<T, ConflictableTransactionError<Refusal>>;

/// Refuses the transaction being built.
pub fn refuse<T>(r: Refusal) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(r))
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    releases: sled::Tree,
    /// (candidate digest, pipeline) → id, for releases not yet terminal.
    open_releases: sled::Tree,
    candidates: sled::Tree,
    /// Attached files by sha256 (see `pipeline::attachment`).
    attachments: sled::Tree,
    events: sled::Tree,
    /// (release id, seq) → (), to replay one release's events.
    release_events: sled::Tree,
    environments: sled::Tree,
    meta: sled::Tree,
    /// (name, 0, digest) → the pushed version's record.
    plugin_versions: sled::Tree,
    /// name → the active version and the ones before it.
    plugin_active: sled::Tree,
    /// (engine key, digest) → what is known of its compiled artefact file.
    plugin_artefacts: sled::Tree,
    /// Plugin bytes and compiled artefacts, as files beside sled.
    plugin_files: plugin_files::PluginFiles,
    bus: broadcast::Sender<Arc<AuditEvent>>,
    /// Commits run one at a time (see [`Store::commit`]).
    commits: Arc<std::sync::Mutex<()>>,
    /// Set once a write to disk failed (see [`Store::stopped`]).
    failure: Arc<tokio::sync::watch::Sender<Option<Failure>>>,
    /// The data directory, to know when [`Store::close`] is done.
    dir: std::path::PathBuf,
}

/// A transaction under construction: typed access to every tree.
pub struct Tx<'a> {
    releases: &'a TransactionalTree,
    /// The highest release id stored when the commit began (commits run one
    /// at a time), for data directories from before the id counter.
    release_floor: u64,
    open_releases: &'a TransactionalTree,
    events: &'a TransactionalTree,
    release_events: &'a TransactionalTree,
    environments: &'a TransactionalTree,
    meta: &'a TransactionalTree,
    plugin_versions: &'a TransactionalTree,
    plugin_active: &'a TransactionalTree,
    now_ms: i64,
    sealed: RefCell<Vec<AuditEvent>>,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, Error> {
        let db = sled::Config::new().path(dir).open()?;
        let (bus, _) = broadcast::channel(4096);
        let store = Store {
            releases: db.open_tree("releases")?,
            open_releases: db.open_tree("open_releases")?,
            candidates: db.open_tree("candidates")?,
            attachments: db.open_tree("attachments")?,
            events: db.open_tree("events")?,
            release_events: db.open_tree("release_events")?,
            environments: db.open_tree("environments")?,
            meta: db.open_tree("meta")?,
            plugin_versions: db.open_tree("plugin_versions")?,
            plugin_active: db.open_tree("plugin_active")?,
            plugin_artefacts: db.open_tree("plugin_artefacts")?,
            plugin_files: plugins::open_files(dir)?,
            db,
            bus,
            commits: Arc::new(std::sync::Mutex::new(())),
            failure: Arc::new(tokio::sync::watch::channel(None).0),
            dir: dir.to_path_buf(),
        };
        store.move_plugin_bytes_out_of_sled()?;
        Ok(store)
    }

    /// Writes out what sled holds, closes this handle (the last one) and
    /// returns once sled's background writers have let go of the directory's
    /// lock, so it can be opened again at once (by a test, a tool, a restart
    /// in the same process). A drop alone leaves that to sled's threads.
    /// Blocking; refused after 10 s if another handle still holds it.
    pub fn close(self) -> Result<(), Error> {
        self.db.flush()?;
        let lock = self.dir.join("db");
        drop(self);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&lock)
            .map_err(|e| Error::Storage(sled::Error::Io(e)))?;
        for _ in 0..400 {
            match file.try_lock() {
                Ok(()) => {
                    let _ = file.unlock();
                    return Ok(());
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(25)),
            }
        }
        Err(Error::Storage(sled::Error::Io(std::io::Error::other(
            format!(
                "{} is still locked 10 s after closing: another handle of this store is open",
                lock.display()
            ),
        ))))
    }

    /// Opens the store of an existing data directory, for tools that read
    /// one: a missing or empty directory is refused, never made into a new
    /// store, and one a running daemon holds is named as such.
    pub fn open_existing(dir: &Path) -> Result<Store, Error> {
        let shown = dir.display().to_string();
        // sled keeps its pages in `db` and its settings in `conf`.
        if !dir.join("db").is_file() || !dir.join("conf").is_file() {
            return Err(Error::NoStore(shown));
        }
        match Store::open(dir) {
            Err(Error::Storage(sled::Error::Io(e)))
                if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") =>
            {
                Err(Error::Held(shown))
            }
            other => other,
        }
    }

    /// Audit events, announced once durable.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AuditEvent>> {
        self.bus.subscribe()
    }

    /// Holds the failure once a write to disk failed. sled may then hold in
    /// memory a transaction its log never got, and after a full disk its
    /// writer does not recover: from then on every read and write through
    /// this store is refused (so no reader sees what was never written),
    /// and the daemon exits for its supervisor to restart it, which
    /// recovers from what is on disk.
    pub fn stopped(&self) -> tokio::sync::watch::Receiver<Option<Failure>> {
        self.failure.subscribe()
    }

    /// Refused once the store has stopped.
    fn check(&self) -> Result<(), Error> {
        match self.failure.borrow().as_ref() {
            Some(f) => Err(Error::Stopped(f.clone())),
            None => Ok(()),
        }
    }

    /// The outcome of a write: a failure stops the store.
    fn written<T>(&self, result: Result<T, sled::Error>) -> Result<T, Error> {
        result.map_err(|e| {
            let space = is_full_disk(&e);
            let failure = Failure {
                detail: e.to_string(),
                space,
            };
            let first = self.failure.send_if_modified(|f| {
                let first = f.is_none();
                if first {
                    *f = Some(failure.clone());
                }
                first
            });
            if first {
                tracing::error!("{failure}");
            }
            Error::Stopped(failure)
        })
    }

    /// Runs `f` as one atomic transaction over every tree, flushes it to disk,
    /// then announces the events it appended. `f` may run more than once.
    pub async fn commit<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T, Error> {
        // sled 0.34 can deadlock when transactions and async flushes run
        // side by side on reactor threads (sled#1308): commit one at a
        // time, with a blocking flush, off the reactor.
        let (out, sealed) = tokio::task::block_in_place(|| {
            let _serial = self.commits.lock().unwrap_or_else(|p| p.into_inner());
            self.check()?;
            // Read in turn, so commits' times follow their order.
            let now_ms = now_ms();
            // Read outside the transaction: sled's transactional trees cannot
            // seek, and a plain read inside one would wait on it.
            let release_floor = self.releases.last()?.map_or(0, |(k, _)| key_u64(&k));
            let result = (
                &self.releases,
                &self.open_releases,
                &self.events,
                &self.release_events,
                &self.environments,
                &self.meta,
                &self.plugin_versions,
                &self.plugin_active,
            )
                .transaction(
                    |(
                        releases,
                        open_releases,
                        events,
                        release_events,
                        environments,
                        meta,
                        plugin_versions,
                        plugin_active,
                    )| {
                        let tx = Tx {
                            releases,
                            release_floor,
                            open_releases,
                            events,
                            release_events,
                            environments,
                            meta,
                            plugin_versions,
                            plugin_active,
                            now_ms,
                            sealed: RefCell::new(Vec::new()),
                        };
                        let out = f(&tx)?;
                        Ok((out, tx.sealed.into_inner()))
                    },
                );
            let (out, sealed) = match result {
                Ok(v) => v,
                Err(TransactionError::Abort(r)) => return Err(Error::Refused(r)),
                Err(TransactionError::Storage(e)) => return self.written(Err(e)),
            };
            self.written(self.db.flush())?;
            Ok::<_, Error>((out, sealed))
        })?;
        for e in sealed {
            // Nobody listening is fine: the log itself is the record.
            let _ = self.bus.send(Arc::new(e));
        }
        Ok(out)
    }

    /// Stores candidate bytes under their digest; says whether they were known.
    pub fn put_candidate(&self, digest: &Digest, bytes: &[u8]) -> Result<bool, Error> {
        self.check()?;
        let previous = self.written(self.candidates.compare_and_swap(
            digest.0,
            None as Option<&[u8]>,
            Some(bytes),
        ))?;
        Ok(previous.is_err())
    }

    pub fn candidate(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        self.check()?;
        Ok(self.candidates.get(digest.0)?.map(|v| v.to_vec()))
    }

    /// Stores an attached file under its digest (kept once however often
    /// it is attached).
    pub fn put_attachment(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        self.check()?;
        let _ = self.written(self.attachments.compare_and_swap(
            digest.0,
            None as Option<&[u8]>,
            Some(bytes),
        ))?;
        Ok(())
    }

    pub fn attachment(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        self.check()?;
        Ok(self.attachments.get(digest.0)?.map(|v| v.to_vec()))
    }

    pub fn release(&self, id: ReleaseId) -> Result<Option<Release>, Error> {
        self.check()?;
        match self.releases.get(id.0.to_be_bytes())? {
            None => Ok(None),
            Some(bytes) => decode(&bytes, || format!("release {id}")).map(Some),
        }
    }

    /// Newest first.
    pub fn releases(&self, pipeline: Option<&str>, limit: usize) -> Result<Vec<Release>, Error> {
        self.check()?;
        let mut out = Vec::new();
        for item in self.releases.iter().rev() {
            let (key, bytes) = item?;
            let r: Release = decode(&bytes, || format!("release {}", key_u64(&key)))?;
            if pipeline.is_none_or(|p| p == r.pipeline.name) {
                out.push(r);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Releases that have not reached a terminal phase.
    pub fn unfinished_releases(&self) -> Result<Vec<ReleaseId>, Error> {
        self.check()?;
        let mut ids = Vec::new();
        for item in self.open_releases.iter() {
            let (_, id) = item?;
            ids.push(ReleaseId(key_u64(&id)));
        }
        ids.sort();
        Ok(ids)
    }

    pub fn environment(&self, name: &str) -> Result<Option<EnvState>, Error> {
        self.check()?;
        match self.environments.get(name)? {
            None => Ok(None),
            Some(bytes) => decode(&bytes, || format!("environment {name}")).map(Some),
        }
    }

    /// Events with `seq >= from`, in order.
    pub fn events_from(&self, from: u64) -> impl Iterator<Item = Result<AuditEvent, Error>> + '_ {
        let stopped = self.check().err().map(Err);
        let events = self.events.range(from.to_be_bytes()..);
        stopped.into_iter().chain(events.map(|item| {
            let (key, bytes) = item?;
            decode(&bytes, || format!("audit event {}", key_u64(&key)))
        }))
    }

    /// Every event about one release, in order.
    pub fn events_of(&self, id: ReleaseId) -> Result<Vec<AuditEvent>, Error> {
        self.check()?;
        let mut out = Vec::new();
        for item in self.release_events.scan_prefix(id.0.to_be_bytes()) {
            let (key, _) = item?;
            let seq = key_u64(&key[8..]);
            if let Some(bytes) = self.events.get(seq.to_be_bytes())? {
                out.push(decode(&bytes, || format!("audit event {seq}"))?);
            }
        }
        Ok(out)
    }

    /// Walks the whole audit chain as stored.
    pub fn verify_audit(&self) -> Result<Verification, Error> {
        self.check()?;
        let head: Option<Head> = match self.meta.get(HEAD_KEY)? {
            None => None,
            Some(b) => Some(decode(&b, || "audit head".into())?),
        };
        let mut rows = Vec::new();
        for item in self.events.iter() {
            let (key, bytes) = item?;
            rows.push((key_u64(&key), bytes.to_vec()));
        }
        Ok(audit::verify(rows, head.as_ref()))
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.check()?;
        Ok(self.meta.get(key)?.map(|v| v.to_vec()))
    }

    /// Raw access to the audit tree, for tools that inspect a stopped daemon's
    /// data and for tests that tamper with it on purpose.
    pub fn raw_event(&self, seq: u64) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.events.get(seq.to_be_bytes())?.map(|v| v.to_vec()))
    }

    pub fn overwrite_raw_event(&self, seq: u64, bytes: &[u8]) -> Result<(), Error> {
        self.events.insert(seq.to_be_bytes(), bytes)?;
        self.db.flush()?;
        Ok(())
    }
}

impl Tx<'_> {
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    pub fn release(&self, id: ReleaseId) -> TxResult<Release> {
        match self.releases.get(id.0.to_be_bytes())? {
            None => refuse(Refusal::NotFound(format!(
                "release {id} does not exist; `gatehouse status` lists releases"
            ))),
            Some(bytes) => match serde_json::from_slice(&bytes) {
                Ok(r) => Ok(r),
                Err(e) => refuse(Refusal::Precondition(format!(
                    "release {id} cannot be read from the store: {e}"
                ))),
            },
        }
    }

    /// Writes the release and keeps the index of unfinished releases in step.
    /// The id for a new release: one more than the last, in the same
    /// transaction that stores it, so ids stay dense across restarts and a
    /// refused submit uses none. A data directory from before the counter
    /// starts after its highest id.
    pub fn next_release_id(&self) -> TxResult<ReleaseId> {
        let last = match self.meta.get(RELEASE_COUNTER_KEY)? {
            Some(v) => key_u64(&v),
            None => self.release_floor,
        };
        let id = last + 1;
        self.meta.insert(RELEASE_COUNTER_KEY, &id.to_be_bytes())?;
        Ok(ReleaseId(id))
    }

    pub fn put_release(&self, r: &Release) -> TxResult<()> {
        self.releases.insert(&r.id.0.to_be_bytes(), encode(r)?)?;
        let key = open_key(&r.candidate, &r.pipeline.name);
        if r.phase.is_terminal() {
            self.open_releases.remove(key)?;
        } else {
            self.open_releases.insert(key, &r.id.0.to_be_bytes())?;
        }
        Ok(())
    }

    /// The unfinished release of these bytes on this pipeline, if one runs.
    pub fn open_release_of(&self, digest: &Digest, pipeline: &str) -> TxResult<Option<ReleaseId>> {
        Ok(self
            .open_releases
            .get(open_key(digest, pipeline))?
            .map(|v| ReleaseId(key_u64(&v))))
    }

    pub fn environment(&self, name: &str) -> TxResult<Option<EnvState>> {
        match self.environments.get(name)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).or_else(|e| {
                refuse(Refusal::Precondition(format!(
                    "environment {name} cannot be read from the store: {e}"
                )))
            }),
        }
    }

    pub fn put_environment(&self, state: &EnvState) -> TxResult<()> {
        self.environments
            .insert(state.name.as_bytes(), encode(state)?)?;
        Ok(())
    }

    /// Appends an event to the audit log, linked to the newest one.
    pub fn append(&self, draft: Draft) -> TxResult<AuditEvent> {
        let head: Head = match self.meta.get(HEAD_KEY)? {
            None => Head::default(),
            Some(b) => serde_json::from_slice(&b).map_err(|e| {
                ConflictableTransactionError::Abort(Refusal::Precondition(format!(
                    "the audit head cannot be read ({e}); run `gatehouse audit verify`"
                )))
            })?,
        };
        // Never earlier than the event before, even if the clock stepped back.
        let at_ms = self.now_ms.max(head.at_ms);
        let event = AuditEvent::seal(draft, head.seq + 1, at_ms, head.hash);
        let seq = event.seq.to_be_bytes();
        self.events.insert(&seq, encode(&event)?)?;
        if let Some(id) = event.release {
            let mut key = id.to_be_bytes().to_vec();
            key.extend_from_slice(&seq);
            self.release_events.insert(key, &[])?;
        }
        let new_head = Head {
            seq: event.seq,
            hash: event.hash.clone(),
            at_ms,
        };
        self.meta.insert(HEAD_KEY, encode(&new_head)?)?;
        self.sealed.borrow_mut().push(event.clone());
        Ok(event)
    }

    pub fn meta(&self, key: &str) -> TxResult<Option<Vec<u8>>> {
        Ok(self.meta.get(key)?.map(|v| v.to_vec()))
    }

    pub fn put_meta(&self, key: &str, value: &[u8]) -> TxResult<()> {
        self.meta.insert(key, value)?;
        Ok(())
    }
}

/// The id of the last release created (meta tree).
const RELEASE_COUNTER_KEY: &str = "last_release_id";

fn open_key(digest: &Digest, pipeline: &str) -> Vec<u8> {
    let mut k = digest.0.to_vec();
    k.extend_from_slice(pipeline.as_bytes());
    k
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, UnabortableTransactionError> {
    // Our own types always serialise; an error here is a bug, reported as a
    // storage failure rather than a panic.
    serde_json::to_vec(v).map_err(|e| {
        UnabortableTransactionError::Storage(sled::Error::Unsupported(format!(
            "cannot encode record: {e}"
        )))
    })
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: impl Fn() -> String,
) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        key: what(),
        detail: e.to_string(),
    })
}

fn key_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(b)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit::EventKind;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn audit_time_never_goes_back_though_the_clock_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let started =
            |tx: &Tx<'_>| tx.append(Draft::new(EventKind::DaemonStarted, "daemon", "start"));
        let first = store.commit(started).await.unwrap();
        // As if the clock had read an hour later when the last event was
        // sealed, and has since been set back.
        let later = first.at_ms + 3_600_000;
        store
            .commit(|tx| {
                let mut head: Head =
                    serde_json::from_slice(&tx.meta("audit_head")?.unwrap_or_default())
                        .unwrap_or_default();
                head.at_ms = later;
                tx.put_meta("audit_head", &serde_json::to_vec(&head).unwrap_or_default())
            })
            .await
            .unwrap();
        let next = store.commit(started).await.unwrap();
        assert_eq!(next.at_ms, later);
        assert!(matches!(
            store.verify_audit().unwrap(),
            Verification::Intact { events: 2, .. }
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_appends_linked_events_that_verify_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut bus = store.subscribe();
            for i in 0..3 {
                store
                    .commit(|tx| {
                        tx.append(Draft::new(
                            EventKind::DaemonStarted,
                            "daemon",
                            format!("start {i}"),
                        ))
                    })
                    .await
                    .unwrap();
            }
            assert_eq!(bus.recv().await.unwrap().seq, 1);
            store.close().expect("close");
        }
        // Close returned: the directory opens again at once, every time.
        let store = Store::open(dir.path()).unwrap();
        let events: Vec<_> = store.events_from(1).collect::<Result<_, _>>().unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1].prev_hash, events[0].hash);
        assert!(matches!(
            store.verify_audit().unwrap(),
            Verification::Intact { events: 3, .. }
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_transaction_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = store
            .commit(|tx| {
                tx.append(Draft::new(EventKind::DaemonStarted, "daemon", "half"))?;
                refuse::<()>(Refusal::Precondition("no".into()))
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Refused(Refusal::Precondition(_))));
        assert_eq!(store.events_from(1).count(), 0);
    }

    #[test]
    fn same_candidate_bytes_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"{}");
        assert!(!store.put_candidate(&d, b"{}").unwrap());
        assert!(store.put_candidate(&d, b"{}").unwrap());
        assert_eq!(store.candidate(&d).unwrap().unwrap(), b"{}");
    }
}
