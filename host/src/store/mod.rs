//! Everything the daemon must not forget: releases, candidates, the audit
//! log, what is live in each environment, through a storage [`Backend`]
//! (sled by default, see [`sled`]). Plugin bytes and compiled artefacts are
//! files beside it, each written before the record naming it (see
//! `plugins`).
//!
//! Rules: every change goes through [`Store::commit`], one atomic
//! transaction across tables that also appends its audit events, durable
//! before `commit` returns, so a caller may act on a state only once it is.
//! Events are announced on the bus only after that. The store knows tables
//! and bytes, the audit chain and ids; the records themselves belong to the
//! modules that own them (`pipeline::release::storage`,
//! `configstore::storage`, `plugins::registry::records`), which read and
//! write them through the typed [`Store::get`] and [`Tx::put`].

pub mod audit;
pub mod backend;
pub mod cluster;
#[cfg(feature = "etcd")]
pub mod etcd;
mod plugin_files;
mod plugins;
pub mod sled;
mod tx;

use crate::digest::Digest;
use audit::{AuditEvent, Head, Verification};
pub use backend::{Abort, Backend, Fault, Range, Table};
pub use cluster::{ClusterView, EndpointHealth, Lead, Member};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::broadcast;
pub use tx::Tx;

/// Where the store keeps its state: `store = "sled"` (the default: the data
/// directory) or `store = { etcd = { ... } }` (a cluster shared by daemons).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreSettings {
    #[default]
    Sled,
    Etcd(EtcdSettings),
}

/// `store = { etcd = { ... } }` in the daemon's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdSettings {
    /// Client URLs of the cluster's members, e.g. `["http://127.0.0.1:2379"]`.
    pub endpoints: Vec<String>,
    /// Where this installation's keys live; daemons sharing it share state.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Leadership lease, in seconds: how long a dead leader holds on.
    #[serde(default = "default_lease_ttl_s")]
    pub lease_ttl_s: u64,
    /// The gRPC address followers send writers to while this daemon leads,
    /// e.g. `https://gatehouse-1.internal:7443`; by default its listen
    /// address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
}

fn default_prefix() -> String {
    "/gatehouse/".into()
}

fn default_lease_ttl_s() -> u64 {
    5
}

/// What [`Store::copy_into`] moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Copied {
    pub rows: u64,
    pub plugins: u64,
    /// The audit chain, verified on both sides.
    pub events: u64,
    pub head_hash: String,
}

/// The store's own tables: the audit log, its index by release, and small
/// settings (the audit head, id counters, idempotency keys).
const EVENTS: Table = Table("events");
/// (release id, seq) → (), to replay one release's events.
const RELEASE_EVENTS: Table = Table("release_events");
const META: Table = Table("meta");
/// Candidate bytes by digest, written once.
const CANDIDATES: Table = Table("candidates");
/// Attached files by sha256 (see `pipeline::attachment`), written once.
const ATTACHMENTS: Table = Table("attachments");

const HEAD_KEY: &[u8] = b"audit_head";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the store failed: {0}; check free disk space and permissions of the data directory")]
    Storage(#[from] Fault),
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
    /// This daemon lost the lead of a shared store (not a disk failure).
    pub lost_lead: bool,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lost_lead {
            write!(
                f,
                "{}; the daemon restarts to follow the new leader",
                self.detail
            )
        } else if self.space {
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
    Stale(crate::ids::ReleaseId),
    /// Another daemon leads the shared store: only it writes.
    #[error(
        "this daemon follows; send writes to the leader{}",
        leader.as_deref().map(|a| format!(" at {a}")).unwrap_or_else(|| " (being elected; retry in a moment)".into())
    )]
    Follower { leader: Option<String> },
}

pub type TxResult<T> = Result<T, Abort>;

/// A table's row as stored: its key and its value.
pub type Row = (Vec<u8>, Vec<u8>);

/// Refuses the transaction being built.
pub fn refuse<T>(r: Refusal) -> TxResult<T> {
    Err(Abort::Refused(r))
}

#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    /// Plugin bytes and compiled artefacts, as files beside the backend.
    plugin_files: plugin_files::PluginFiles,
    bus: broadcast::Sender<Arc<AuditEvent>>,
    /// Commits run one at a time (see [`Store::commit`]).
    commits: Arc<std::sync::Mutex<()>>,
    /// Set once a write to disk failed (see [`Store::stopped`]).
    failure: Arc<tokio::sync::watch::Sender<Option<Failure>>>,
    /// Whether other daemons share the backend (etcd): plugin bytes are
    /// then kept in it too, not only in this daemon's files.
    shared: bool,
    /// This daemon's place among those sharing the backend.
    lead: tokio::sync::watch::Receiver<Lead>,
    /// The newest event announced on the bus (see [`Store::catch_up`]).
    announced: Arc<std::sync::Mutex<u64>>,
}

impl Store {
    /// Opens (or makes) the sled store of a data directory.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        let backend = sled::Sled::open(dir)?;
        let files = plugins::open_files(dir)?;
        plugins::move_plugin_bytes_out_of_sled(&backend, &files)?;
        Ok(Store::with_backend(Arc::new(backend), files, false))
    }

    /// Opens the store `settings` name; plugin files stay in `dir` either
    /// way. In a shared store this daemon joins as `me`.
    pub fn open_in(settings: &StoreSettings, dir: &Path, me: Member) -> Result<Store, Error> {
        match settings {
            StoreSettings::Sled => Store::open(dir),
            #[cfg(feature = "etcd")]
            StoreSettings::Etcd(e) => {
                let backend = etcd::Etcd::connect(e, me)?;
                let files = plugins::open_files(dir)?;
                Ok(Store::with_backend(Arc::new(backend), files, true))
            }
            #[cfg(not(feature = "etcd"))]
            StoreSettings::Etcd(_) => Err({
                let _ = me;
                Error::Storage(Fault::other(
                    "store = { etcd = ... } needs a gatehouse built with etcd support: \
                 `cargo build --release --features etcd` (its client's build needs protoc, \
                 e.g. Debian's protobuf-compiler)",
                ))
            }),
        }
    }

    /// Copies every row of this store and its plugin bytes into `to`,
    /// which must hold nothing yet; then checks that `to`'s audit chain
    /// verifies to the same head as this one's. For moving a single-node
    /// installation onto etcd (`gatehouse store migrate`); neither store
    /// may be in use by a daemon meanwhile. Blocking.
    pub fn copy_into(&self, to: &Store) -> Result<Copied, Error> {
        let before = self.verify_audit()?;
        let audit::Verification::Intact { events, head_hash } = before else {
            return Err(Error::Storage(Fault::other(format!(
                "the source's audit chain does not verify ({before:?}); repair it before moving it"
            ))));
        };
        if !to.backend.tables()?.is_empty() {
            return Err(Error::Storage(Fault::other(
                "the destination already holds a store; move into an empty prefix",
            )));
        }
        let mut rows = 0u64;
        for name in self.backend.tables()? {
            // Table names are static in the daemon; a one-shot copy names
            // the ones it finds.
            let table = Table(Box::leak(name.into_boxed_str()));
            for row in self.backend.scan(table, Range::All, false)? {
                let (key, value) = row?;
                to.backend.put(table, &key, &value)?;
                rows += 1;
            }
        }
        let mut plugins = 0u64;
        for digest in self.plugin_files.wasm_digests().map_err(Fault::io)? {
            if let Some(wasm) = self.plugin_blob(&digest)? {
                to.put_plugin_blob(&digest, &wasm)?;
                plugins += 1;
            }
        }
        match to.verify_audit()? {
            audit::Verification::Intact {
                events: after,
                head_hash: head,
            } if after == events && head == head_hash => Ok(Copied {
                rows,
                plugins,
                events,
                head_hash,
            }),
            other => Err(Error::Storage(Fault::other(format!(
                "the copy's audit chain does not match the source's ({events} events, head {head_hash}): {other:?}"
            )))),
        }
    }

    fn with_backend(
        backend: Arc<dyn Backend>,
        plugin_files: plugin_files::PluginFiles,
        shared: bool,
    ) -> Store {
        let (bus, _) = broadcast::channel(4096);
        let lead = backend
            .lead()
            .unwrap_or_else(|| tokio::sync::watch::channel(Lead::Leading).1);
        let store = Store {
            backend,
            plugin_files,
            bus,
            commits: Arc::new(std::sync::Mutex::new(())),
            failure: Arc::new(tokio::sync::watch::channel(None).0),
            shared,
            lead,
            announced: Arc::new(std::sync::Mutex::new(0)),
        };
        if let Ok(seq) = store.head_seq() {
            *store.lock_announced() = seq;
        }
        store
    }

    fn lock_announced(&self) -> std::sync::MutexGuard<'_, u64> {
        self.announced.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This daemon's place among those sharing the store; a store of one
    /// daemon always leads.
    pub fn lead(&self) -> tokio::sync::watch::Receiver<Lead> {
        self.lead.clone()
    }

    /// Refused, naming the leader, while another daemon leads.
    pub fn check_leads(&self) -> Result<(), Error> {
        match &*self.lead.borrow() {
            Lead::Leading => Ok(()),
            Lead::Following { leader } => Err(Error::Refused(Refusal::Follower {
                leader: leader.as_ref().map(|m| m.grpc.clone()),
            })),
            Lead::Lost(why) => Err(Error::Stopped(Failure {
                detail: why.clone(),
                space: false,
                lost_lead: true,
            })),
        }
    }

    /// The keys of `tables` as other daemons write them (an empty key: read
    /// the whole table again), for a follower to keep up; `None` for a
    /// store nobody else writes.
    pub fn follow(
        &self,
        tables: &[Table],
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<(Table, Vec<u8>)>> {
        self.backend.follow(tables)
    }

    /// The audit log's table, for [`Store::follow`].
    pub const EVENTS: Table = EVENTS;

    /// Announces on the bus the events appended since the last one
    /// announced: those other daemons wrote, for a follower keeping up or a
    /// new leader taking over (this daemon's own commits announce theirs).
    /// Returns how many. Blocking.
    pub fn catch_up(&self) -> Result<usize, Error> {
        let mut announced = self.lock_announced();
        let mut count = 0;
        for event in self.events_from(*announced + 1) {
            let event = event?;
            if event.seq <= *announced {
                continue;
            }
            *announced = event.seq;
            let _ = self.bus.send(Arc::new(event));
            count += 1;
        }
        Ok(count)
    }

    /// Gives up the lead of a shared store at once (a graceful stop), so
    /// another daemon takes over without waiting for the lease; from now
    /// on this store writes nothing. Blocking.
    pub fn resign(&self) -> Result<(), Error> {
        Ok(self.backend.resign()?)
    }

    /// The daemons sharing the store, for `gatehouse cluster status`;
    /// `None` for a store of one daemon. Blocking.
    pub fn cluster(&self) -> Option<Result<ClusterView, Error>> {
        self.backend.cluster().map(|r| r.map_err(Error::from))
    }

    /// Stops the store because this daemon lost the lead (its lease is
    /// gone, or it could not take over):
    /// from now on every read and write is refused and the daemon exits.
    pub fn stop(&self, detail: String) {
        self.fail(Failure {
            detail,
            space: false,
            lost_lead: true,
        });
    }

    /// Stops the store for `failure`, unless it has stopped already; the
    /// first failure is logged and kept.
    fn fail(&self, failure: Failure) {
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
    }

    /// Writes out what the backend holds, closes this handle (the last one)
    /// and returns once the backend has let go of the data directory, so it
    /// can be opened again at once (by a test, a tool, a restart in the same
    /// process). Blocking; refused after 10 s if another handle still holds
    /// it.
    pub fn close(self) -> Result<(), Error> {
        let wait = self.backend.closer()?;
        drop(self);
        Ok(wait()?)
    }

    /// Opens the store of an existing data directory, for tools that read
    /// one: a missing or empty directory is refused, never made into a new
    /// store, and one a running daemon holds is named as such.
    pub fn open_existing(dir: &Path) -> Result<Store, Error> {
        let shown = dir.display().to_string();
        if !sled::Sled::exists(dir) {
            return Err(Error::NoStore(shown));
        }
        match Store::open(dir) {
            Err(Error::Storage(f)) if sled::Sled::is_held(&f) => Err(Error::Held(shown)),
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
    fn written<T>(&self, result: Result<T, Fault>) -> Result<T, Error> {
        result.map_err(|e| {
            let failure = Failure {
                detail: e.to_string(),
                space: e.full_disk,
                lost_lead: e.lost_lead,
            };
            self.fail(failure.clone());
            Error::Stopped(failure)
        })
    }

    /// Runs `f` as one atomic transaction, made durable, then announces the
    /// events it appended. `f` may run more than once.
    pub async fn commit<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T, Error> {
        // Commits run one at a time, off the reactor (the backend may block
        // on its disk; see `sled`), and their times follow their order.
        let (out, sealed) = tokio::task::block_in_place(|| {
            let _serial = self.commits.lock().unwrap_or_else(|p| p.into_inner());
            self.check()?;
            self.check_leads()?;
            let now_ms = now_ms();
            let done = RefCell::new(None);
            let result = self.backend.transact(&|txn| {
                let tx = Tx {
                    txn,
                    now_ms,
                    sealed: RefCell::new(Vec::new()),
                };
                let out = f(&tx)?;
                *done.borrow_mut() = Some((out, tx.sealed.into_inner()));
                Ok(())
            });
            match result {
                Ok(()) => {}
                Err(Abort::Refused(r)) => return Err(Error::Refused(r)),
                Err(Abort::Fault(e)) => return self.written(Err(e)),
                Err(Abort::Conflict) => {
                    return Err(Error::Storage(Fault::other(
                        "the backend gave up on a conflicting transaction",
                    )));
                }
            }
            match done.into_inner() {
                Some(v) => Ok::<_, Error>(v),
                None => Err(Error::Storage(Fault::other(
                    "the backend committed without running the transaction",
                ))),
            }
        })?;
        if !sealed.is_empty() {
            let mut announced = self.lock_announced();
            for e in sealed {
                *announced = (*announced).max(e.seq);
                // Nobody listening is fine: the log itself is the record.
                let _ = self.bus.send(Arc::new(e));
            }
        }
        Ok(out)
    }

    /// A record of `table`, decoded; `what` names it in an error.
    pub fn get<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
        what: impl Fn() -> String,
    ) -> Result<Option<T>, Error> {
        self.check()?;
        match self.backend.get(table, key)? {
            None => Ok(None),
            Some(bytes) => decode(&bytes, what).map(Some),
        }
    }

    /// The raw rows of `table` in key order (or reversed), lazily.
    pub fn rows(
        &self,
        table: Table,
        range: Range<'_>,
        reverse: bool,
    ) -> Result<impl Iterator<Item = Result<Row, Error>> + Send + '_, Error> {
        self.check()?;
        Ok(self
            .backend
            .scan(table, range, reverse)?
            .map(|r| r.map_err(Error::from)))
    }

    /// Stores candidate bytes under their digest; says whether they were known.
    pub fn put_candidate(&self, digest: &Digest, bytes: &[u8]) -> Result<bool, Error> {
        self.check()?;
        self.check_leads()?;
        self.written(self.backend.put_new(CANDIDATES, &digest.0, bytes))
    }

    pub fn candidate(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        self.check()?;
        Ok(self.backend.get(CANDIDATES, &digest.0)?)
    }

    /// Stores an attached file under its digest (kept once however often
    /// it is attached).
    pub fn put_attachment(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        self.check()?;
        self.check_leads()?;
        self.written(self.backend.put_new(ATTACHMENTS, &digest.0, bytes))?;
        Ok(())
    }

    pub fn attachment(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        self.check()?;
        Ok(self.backend.get(ATTACHMENTS, &digest.0)?)
    }

    /// Events with `seq >= from`, in order.
    pub fn events_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<AuditEvent, Error>> + Send + '_ {
        let key = from.to_be_bytes();
        let rows = match self.rows(EVENTS, Range::From(&key), false) {
            Ok(rows) => Box::new(rows) as Box<dyn Iterator<Item = Result<Row, Error>> + Send>,
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        rows.map(|item| {
            let (key, bytes) = item?;
            decode(&bytes, || format!("audit event {}", key_u64(&key)))
        })
    }

    /// Every event about one release, in order.
    pub fn events_of(&self, id: crate::ids::ReleaseId) -> Result<Vec<AuditEvent>, Error> {
        let mut out = Vec::new();
        for item in self.rows(RELEASE_EVENTS, Range::Prefix(&id.0.to_be_bytes()), false)? {
            let (key, _) = item?;
            let seq = key_u64(&key[8..]);
            if let Some(e) =
                self.get(EVENTS, &seq.to_be_bytes(), || format!("audit event {seq}"))?
            {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Walks the whole audit chain as stored.
    pub fn verify_audit(&self) -> Result<Verification, Error> {
        // The head and the events are read as of one moment: with commits
        // held off, so an event committed between the two reads is not
        // taken for one appended behind the head's back.
        let _serial = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        let head: Option<Head> = self.get(META, HEAD_KEY, || "audit head".into())?;
        let mut rows = Vec::new();
        for item in self.rows(EVENTS, Range::All, false)? {
            let (key, bytes) = item?;
            rows.push((key_u64(&key), bytes));
        }
        Ok(audit::verify(rows, head.as_ref()))
    }

    /// The newest event's sequence number (0 for an empty log).
    pub fn head_seq(&self) -> Result<u64, Error> {
        let head: Option<Head> = self.get(META, HEAD_KEY, || "audit head".into())?;
        Ok(head.map_or(0, |h| h.seq))
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.check()?;
        Ok(self.backend.get(META, key.as_bytes())?)
    }

    /// Raw access to the audit log, for tools that inspect a stopped daemon's
    /// data and for tests that tamper with it on purpose.
    pub fn raw_event(&self, seq: u64) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.backend.get(EVENTS, &seq.to_be_bytes())?)
    }

    pub fn overwrite_raw_event(&self, seq: u64, bytes: &[u8]) -> Result<(), Error> {
        self.backend.put(EVENTS, &seq.to_be_bytes(), bytes)?;
        self.backend.flush()?;
        Ok(())
    }
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, Abort> {
    // Our own types always serialise; an error here is a bug, reported as a
    // storage failure rather than a panic.
    serde_json::to_vec(v)
        .map_err(|e| Abort::Fault(Fault::other(format!("cannot encode record: {e}"))))
}

/// A stored record decoded; one that cannot be is named by `what` as
/// corrupt.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: impl Fn() -> String) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        key: what(),
        detail: e.to_string(),
    })
}

/// A big-endian u64 key (ids, sequence numbers), as the tables store them.
pub fn key_u64(bytes: &[u8]) -> u64 {
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
    use audit::{Draft, EventKind};

    /// Commits one `daemon.started` event, the `i`th.
    async fn append_start(store: &Store, i: usize) -> AuditEvent {
        let draft = Draft::new(EventKind::DaemonStarted, "daemon", format!("start {i}"));
        store.commit(|tx| tx.append(draft.clone())).await.unwrap()
    }

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
                append_start(&store, i).await;
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verifying_while_events_are_committed_never_reports_a_break() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..300 {
                    append_start(&store, i).await;
                }
            })
        };
        let mut checks = 0;
        while !writer.is_finished() {
            let s = store.clone();
            let v = tokio::task::spawn_blocking(move || s.verify_audit())
                .await
                .unwrap()
                .unwrap();
            assert!(matches!(v, Verification::Intact { .. }), "{v:?}");
            checks += 1;
        }
        writer.await.unwrap();
        assert!(checks > 0);
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
