//! The etcd backend: the store's tables as keys under a prefix of an etcd
//! cluster, for daemons that share their state across machines. Built with
//! the `etcd` feature (its client compiles etcd's protos with protoc).
//!
//! Rules:
//! - **Layout.** A row is `{prefix}t/{table}/{key}` (the key's bytes as
//!   they are, so etcd's key order is the table's). Every value starts with
//!   a tag byte: 0, the value follows; 1, a blob too large for one request,
//!   whose chunks are under `{prefix}c/{table}/{key}/{n:08}` and whose
//!   manifest (chunk count, length) follows the tag. Chunks are written
//!   first, the manifest last, so a reader never sees half a blob.
//! - **Transactions.** A body reads keys (the leader's own copy of what
//!   it last read or wrote, else a linearizable get) and buffers its
//!   writes; the commit is one etcd `Txn` comparing the `mod_revision` of
//!   every key the body read (`create_revision = 0` for a key it found
//!   absent). A failed compare is a conflict: the copy is dropped and the
//!   body runs again on fresh reads. A committed `Txn` is durable on a
//!   quorum when it returns.
//! - **An ambiguous commit** (the connection broke after the request left)
//!   is settled by a marker every commit writes in the same `Txn`:
//!   `{prefix}m/{writer}` holds this process's commit count. Commits of one
//!   process run one at a time (`Store::commit`), so the marker says
//!   whether the last one landed.
//! - **One daemon leads a prefix.** At open a daemon takes a lease of
//!   `lease_ttl_s`, registers under `{prefix}members/` and asks for
//!   `{prefix}leader` under its lease: the first leads at once, the others
//!   follow (they read, and are refused writes) and ask again every
//!   `CAMPAIGN_EVERY` until a dead leader's lease runs out. It keeps the
//!   lease alive; **every write it makes compares the leader key's
//!   `create_revision` with the one it created**, so once its lease is gone
//!   (it was paused, partitioned, or killed and replaced) its writes are
//!   refused, the store stops, and the daemon exits for its supervisor to
//!   restart it as a follower (argo-rollouts #2117).
//! - **Followers keep up** through an etcd watch of the rows (see
//!   [`Backend::follow`]), restarted from the last revision seen when it
//!   breaks.
//! - **Calls run on the backend's own runtime** and the caller's thread
//!   waits, as it does for sled's disk: the store's trait is synchronous.
//!   Reads retry an unavailable cluster for up to `REQUEST_DEADLINE`.

use super::EtcdSettings;
use super::backend::{Abort, Backend, Fault, Range, Rows, Table, Txn};
use super::cluster::{ClusterView, EndpointHealth, Lead, Member};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, SortOrder, SortTarget, TxnOp,
};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a call may keep retrying an unavailable cluster.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Values above this are written as chunks (etcd refuses requests over
/// 1.5 MiB by default).
const CHUNK: usize = 256 * 1024;
/// Rows fetched per request of a scan.
const PAGE: i64 = 256;
/// Keys [`Etcd::get_cached`] keeps before it starts over.
const CACHED_KEYS: usize = 10_000;
/// How often a follower asks whether the lead is free.
const CAMPAIGN_EVERY: Duration = Duration::from_millis(50);

const INLINE: u8 = 0;
const CHUNKED: u8 = 1;

pub struct Etcd {
    client: Client,
    runtime: Option<tokio::runtime::Runtime>,
    settings: EtcdSettings,
    prefix: Vec<u8>,
    /// The leader key, and the `create_revision` this daemon gave it once
    /// it leads (0 while it follows).
    leader: Vec<u8>,
    fence: Arc<AtomicI64>,
    /// This daemon's place, as the campaign and the keep-alive find it.
    lead: Arc<watch::Sender<Lead>>,
    /// Set once the lease is known to be gone (or given up).
    lost: Arc<AtomicBool>,
    /// The lease this daemon holds its keys under.
    lease: AtomicI64,
    /// This process's marker key, and how many commits it has made.
    marker: Vec<u8>,
    commits: AtomicU64,
    /// What transactions read, as this daemon last read or wrote it: while
    /// it leads nobody else writes, so a transaction reads without a round
    /// of the cluster. Its commit still compares every key's revision, so
    /// a stale copy (a tool wrote meanwhile) only makes it run again, on a
    /// cleared cache.
    cache: std::sync::Mutex<Cache>,
}

/// Stored bytes (none: absent) and `mod_revision` by key.
type Cache = std::collections::HashMap<Vec<u8>, (Option<Vec<u8>>, i64)>;

fn fault(e: impl std::fmt::Display) -> Fault {
    Fault::other(format!("etcd: {e}"))
}

/// Whether an error may pass on its own (no leader, a member down, a
/// dropped connection, a timeout), so the call is worth repeating.
fn transient(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Unknown
                | tonic::Code::Aborted
        ),
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

fn options() -> ConnectOptions {
    ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_timeout(Duration::from_secs(5))
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_require_leader(true)
}

/// Keeps the lease alive until etcd says it is gone, or no answer came
/// for a whole TTL (a member down only means asking another); then marks
/// it lost.
async fn keep_alive(
    mut c: Client,
    lease: i64,
    ttl: Duration,
    lost: Arc<AtomicBool>,
    lead: Arc<watch::Sender<Lead>>,
) {
    let period = (ttl / 3).max(Duration::from_millis(100));
    let mut stream = None;
    let mut kept_at = Instant::now();
    let why = loop {
        if stream.is_none() {
            stream = c.lease_keep_alive(lease).await.ok();
        }
        let answer = match stream.as_mut() {
            Some((keeper, answers)) => match keeper.keep_alive().await {
                Ok(()) => answers.message().await,
                Err(e) => Err(e),
            },
            None => Err(etcd_client::Error::LeaseKeepAliveError("no stream".into())),
        };
        match answer {
            Ok(Some(a)) if a.ttl() > 0 => {
                kept_at = Instant::now();
                tokio::time::sleep(period).await;
            }
            Ok(_) => break "etcd says it expired".to_string(),
            Err(e) if kept_at.elapsed() < ttl => {
                tracing::debug!("keeping the etcd lease alive: {e}; asking again");
                stream = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => break format!("no keep-alive answered for {ttl:?}: {e}"),
        }
    };
    if lost.swap(true, Ordering::SeqCst) {
        // Given up on purpose (see `resign`), or already found gone.
        return;
    }
    let why = format!("this daemon lost its etcd lease ({why}); it no longer leads and stops");
    tracing::error!("{why}");
    lead.send_replace(Lead::Lost(why));
}

/// One daemon's bid for the leader key.
#[derive(Clone)]
struct Campaign {
    key: Vec<u8>,
    /// This daemon, as a [`Member`] in JSON.
    value: Vec<u8>,
    lease: i64,
    fence: Arc<AtomicI64>,
    lead: Arc<watch::Sender<Lead>>,
    prefix: String,
}

impl Campaign {
    /// Creates the leader key under the lease if nobody holds it; says
    /// whether this daemon leads now, and tells who does otherwise.
    async fn attempt(self, mut c: Client) -> Result<bool, etcd_client::Error> {
        let txn = etcd_client::Txn::new()
            .when([Compare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(
                self.key.clone(),
                self.value.clone(),
                Some(etcd_client::PutOptions::new().with_lease(self.lease)),
            )])
            .or_else([TxnOp::get(self.key.clone(), None)]);
        let r = c.txn(txn).await?;
        // The key this daemon created: now, or by an earlier attempt whose
        // answer was lost (it holds the key under its own lease).
        let held = match r.succeeded() {
            true => r.header().map(|h| h.revision()),
            false => None,
        };
        let mut holder = None;
        let mut ours = held;
        for o in r.op_responses() {
            if let etcd_client::TxnOpResponse::Get(g) = o
                && let Some(kv) = g.kvs().first()
            {
                if kv.lease() == self.lease {
                    ours = Some(kv.create_revision());
                }
                holder = serde_json::from_slice::<Member>(kv.value()).ok();
            }
        }
        if let Some(created) = ours.filter(|c| *c > 0) {
            self.fence.store(created, Ordering::SeqCst);
            self.lead.send_replace(Lead::Leading);
            tracing::info!(
                prefix = %self.prefix,
                "this daemon leads (lease {:x})",
                self.lease
            );
            return Ok(true);
        }
        self.lead.send_if_modified(|now| {
            let next = Lead::Following { leader: holder };
            let changed = matches!(now, Lead::Following { .. }) && *now != next;
            if changed {
                if let Lead::Following {
                    leader: Some(m), ..
                } = &next
                {
                    tracing::info!(prefix = %self.prefix, leader = %m.grpc, "another daemon leads; this one follows");
                }
                *now = next;
            }
            changed
        });
        Ok(false)
    }
}

/// The end of the range of keys starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Etcd {
    /// Connects to the cluster and joins the daemons sharing the prefix as
    /// `me` (an id is made for it if it has none; it must be unique to the
    /// process: it names its commit marker); refused with what to check when no
    /// member answers. Leads at once if nobody else does, else follows and
    /// takes the lead when it is free (see [`Backend::lead`]).
    pub fn connect(settings: &EtcdSettings, mut me: Member) -> Result<Etcd, Fault> {
        if settings.endpoints.is_empty() {
            return Err(Fault::other(
                "store.etcd.endpoints is empty; list the cluster's client URLs",
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd")
            .enable_all()
            .build()
            .map_err(Fault::io)?;
        let endpoints = settings.endpoints.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(Client::connect(endpoints, Some(options())).await);
        });
        let client = rx
            .recv()
            .map_err(fault)?
            .map_err(|e| fault(format!("cannot connect to {:?}: {e}", settings.endpoints)))?;
        if me.id.is_empty() {
            let mut id = [0u8; 16];
            getrandom::fill(&mut id).map_err(fault)?;
            me.id = hex::encode(id);
        }
        let prefix = settings.prefix.as_bytes().to_vec();
        let marker = [&prefix[..], b"m/", me.id.as_bytes()].concat();
        let leader = [&prefix[..], b"leader"].concat();
        let etcd = Etcd {
            client,
            runtime: Some(runtime),
            settings: settings.clone(),
            prefix,
            leader,
            fence: Arc::new(AtomicI64::new(0)),
            lead: Arc::new(watch::channel(Lead::Following { leader: None }).0),
            lost: Arc::new(AtomicBool::new(false)),
            lease: AtomicI64::new(0),
            marker,
            commits: AtomicU64::new(0),
            cache: Default::default(),
        };
        // Fail now, naming the endpoints, rather than at the first commit.
        let probe = [&etcd.prefix[..], b"probe"].concat();
        etcd.get_raw(probe)
            .map_err(|e| fault(format!("{:?} did not answer: {e}", settings.endpoints)))?;
        etcd.join(&me)?;
        Ok(etcd)
    }

    /// Takes a lease and keeps it alive, registers `me` under it, and
    /// campaigns for the leader key: once now, so a sole daemon leads as it
    /// opens, then in the background until it leads or its lease is gone.
    fn join(&self, me: &Member) -> Result<(), Fault> {
        let ttl = self.settings.lease_ttl_s.clamp(1, 3600) as i64;
        let lease =
            self.call(move |mut c| async move { Ok(c.lease_grant(ttl, None).await?.id()) })?;
        self.lease.store(lease, Ordering::SeqCst);
        self.runtime().spawn(keep_alive(
            self.client.clone(),
            lease,
            Duration::from_secs(ttl as u64),
            self.lost.clone(),
            self.lead.clone(),
        ));
        let value = serde_json::to_vec(me).map_err(fault)?;
        let member = [&self.prefix[..], b"members/", me.id.as_bytes()].concat();
        let v = value.clone();
        self.call(move |mut c| {
            let (k, v) = (member.clone(), v.clone());
            async move {
                c.put(k, v, Some(etcd_client::PutOptions::new().with_lease(lease)))
                    .await
                    .map(|_| ())
            }
        })?;
        let campaign = Campaign {
            key: self.leader.clone(),
            value,
            lease,
            fence: self.fence.clone(),
            lead: self.lead.clone(),
            prefix: String::from_utf8_lossy(&self.prefix).into_owned(),
        };
        let first = campaign.clone();
        if self.call(move |c| first.clone().attempt(c))? {
            return Ok(());
        }
        let (client, lost) = (self.client.clone(), self.lost.clone());
        self.runtime().spawn(async move {
            while !lost.load(Ordering::SeqCst) {
                tokio::time::sleep(CAMPAIGN_EVERY).await;
                match campaign.clone().attempt(client.clone()).await {
                    Ok(true) => return,
                    Ok(false) => {}
                    Err(e) => tracing::debug!("asking etcd whether the lead is free: {e}"),
                }
            }
        });
        Ok(())
    }

    /// The leader key's `create_revision`; 0 when nobody leads.
    fn leader_created(&self) -> Result<i64, Fault> {
        let k = self.leader.clone();
        self.call(move |mut c| {
            let k = k.clone();
            async move {
                let r = c.get(k, None).await?;
                Ok(r.kvs().first().map_or(0, |kv| kv.create_revision()))
            }
        })
    }

    /// Whether the leader key is still the one this daemon created.
    fn still_leads(&self) -> Result<bool, Fault> {
        let fence = self.fence.load(Ordering::SeqCst);
        Ok(fence != 0 && self.leader_created()? == fence)
    }

    /// Refused once the lease is gone: a deposed leader must not act.
    fn check_lease(&self) -> Result<(), Fault> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(Fault::lost_lead(
                "this daemon lost its lease and no longer leads; it stops so that only the leader writes",
            ));
        }
        Ok(())
    }

    /// The compare every write carries: the leader key is still the one
    /// this daemon created. Refused while it follows.
    fn fence_compare(&self) -> Result<Compare, Fault> {
        self.check_lease()?;
        match self.fence.load(Ordering::SeqCst) {
            0 => Err(Fault::lost_lead(
                "this daemon follows and does not write; the leader does",
            )),
            fence => Ok(Compare::create_revision(
                self.leader.clone(),
                CompareOp::Equal,
                fence,
            )),
        }
    }

    /// Marks this daemon deposed: it stops writing and must stop.
    fn deposed(&self) -> Fault {
        let why = "this daemon's leadership was taken over (its lease ran out); its write is refused and it stops";
        self.lost.store(true, Ordering::SeqCst);
        self.lead.send_replace(Lead::Lost(why.into()));
        tracing::error!("{why}");
        Fault::lost_lead(why)
    }

    /// Runs `ops` if `when` holds and this daemon still leads; says whether
    /// `when` held. Refused, and the daemon deposed, once another leads.
    fn fenced(&self, when: Vec<Compare>, ops: Vec<TxnOp>) -> Result<bool, Fault> {
        let mut compares = when;
        compares.push(self.fence_compare()?);
        let done = self.call(move |mut c| {
            let txn = etcd_client::Txn::new()
                .when(compares.clone())
                .and_then(ops.clone());
            async move { c.txn(txn).await.map(|r| r.succeeded()) }
        })?;
        if !done && !self.still_leads()? {
            return Err(self.deposed());
        }
        Ok(done)
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the backend")
    }

    /// Runs `call` on the backend's runtime, repeating it while it fails
    /// for a reason that may pass, up to `REQUEST_DEADLINE`.
    fn call<T, F, Fut>(&self, call: F) -> Result<T, Fault>
    where
        T: Send + 'static,
        F: Fn(Client) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>> + Send,
    {
        let client = self.client.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime().spawn(async move {
            let deadline = Instant::now() + REQUEST_DEADLINE;
            let mut wait = Duration::from_millis(20);
            let result = loop {
                match call(client.clone()).await {
                    Err(e) if transient(&e) && Instant::now() + wait < deadline => {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_millis(500));
                    }
                    other => break other,
                }
            };
            let _ = tx.send(result);
        });
        rx.recv().map_err(fault)?.map_err(fault)
    }

    fn row_key(&self, table: Table, key: &[u8]) -> Vec<u8> {
        [&self.prefix[..], b"t/", table.0.as_bytes(), b"/", key].concat()
    }

    fn table_prefix(&self, table: Table) -> Vec<u8> {
        [&self.prefix[..], b"t/", table.0.as_bytes(), b"/"].concat()
    }

    fn chunk_prefix(&self, table: Table, key: &[u8]) -> Vec<u8> {
        [&self.prefix[..], b"c/", table.0.as_bytes(), b"/", key, b"/"].concat()
    }

    /// A key's stored bytes and `mod_revision`, if it exists; read as of
    /// now (linearizable).
    fn get_raw(&self, full: Vec<u8>) -> Result<Option<(Vec<u8>, i64)>, Fault> {
        self.call(move |mut c| {
            let full = full.clone();
            async move {
                let r = c.get(full, None).await?;
                Ok(r.kvs()
                    .first()
                    .map(|kv| (kv.value().to_vec(), kv.mod_revision())))
            }
        })
    }

    /// What a transaction reads: the cached copy when there is one (see
    /// `cache`), else the cluster's, kept.
    fn get_cached(&self, full: Vec<u8>) -> Result<Option<(Vec<u8>, i64)>, Fault> {
        if let Some((value, rev)) = self.lock_cache().get(&full) {
            return Ok(value.clone().map(|v| (v, *rev)));
        }
        let found = self.get_raw(full.clone())?;
        let mut cache = self.lock_cache();
        if cache.len() >= CACHED_KEYS {
            cache.clear();
        }
        let entry = match &found {
            Some((v, rev)) => (Some(v.clone()), *rev),
            None => (None, 0),
        };
        cache.insert(full, entry);
        Ok(found)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value a stored tag and body stand for: inline, or its chunks.
    fn decode(&self, table: Table, key: &[u8], stored: &[u8]) -> Result<Vec<u8>, Fault> {
        match stored.split_first() {
            Some((&INLINE, value)) => Ok(value.to_vec()),
            Some((&CHUNKED, manifest)) if manifest.len() == 12 => {
                let count = u32::from_be_bytes(manifest[..4].try_into().unwrap_or_default());
                let length = u64::from_be_bytes(manifest[4..].try_into().unwrap_or_default());
                // A few chunks per request: a response over 4 MiB is refused.
                let base = self.chunk_prefix(table, key);
                let to = prefix_end(&base);
                let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(count as usize);
                let mut from = base;
                loop {
                    let (f, t) = (from.clone(), to.clone());
                    let (page, more) = self.call(move |mut c| {
                        let (f, t) = (f.clone(), t.clone());
                        async move {
                            let r = c
                                .get(f, Some(GetOptions::new().with_range(t).with_limit(8)))
                                .await?;
                            let page: Vec<(Vec<u8>, Vec<u8>)> = r
                                .kvs()
                                .iter()
                                .map(|kv| (kv.key().to_vec(), kv.value().to_vec()))
                                .collect();
                            Ok((page, r.more()))
                        }
                    })?;
                    let last = page.last().map(|(k, _)| k.clone());
                    chunks.extend(page.into_iter().map(|(_, v)| v));
                    match last {
                        Some(k) if more => from = [&k[..], &[0u8][..]].concat(),
                        _ => break,
                    }
                }
                let value = chunks.concat();
                if chunks.len() != count as usize || value.len() as u64 != length {
                    return Err(fault(format!(
                        "{}: a blob of {length} bytes in {count} chunks reads {} bytes in {} chunks",
                        table.0,
                        value.len(),
                        chunks.len()
                    )));
                }
                Ok(value)
            }
            _ => Err(fault(format!(
                "{}: a value with an unknown layout; was it written by another program?",
                table.0
            ))),
        }
    }

    fn inline(value: &[u8]) -> Vec<u8> {
        [&[INLINE][..], value].concat()
    }

    /// Writes a large value's chunks, and returns its manifest.
    fn write_chunks(&self, table: Table, key: &[u8], value: &[u8]) -> Result<Vec<u8>, Fault> {
        let base = self.chunk_prefix(table, key);
        let chunks: Vec<(Vec<u8>, Vec<u8>)> = value
            .chunks(CHUNK)
            .enumerate()
            .map(|(n, c)| {
                (
                    [&base[..], format!("{n:08}").as_bytes()].concat(),
                    c.to_vec(),
                )
            })
            .collect();
        let count = chunks.len() as u32;
        for (k, v) in chunks {
            self.fenced(Vec::new(), vec![TxnOp::put(k, v, None)])?;
        }
        let mut manifest = vec![CHUNKED];
        manifest.extend_from_slice(&count.to_be_bytes());
        manifest.extend_from_slice(&(value.len() as u64).to_be_bytes());
        Ok(manifest)
    }

    /// What to store for `value`: inline, or its chunks written and the
    /// manifest returned.
    fn stored(&self, table: Table, key: &[u8], value: &[u8]) -> Result<Vec<u8>, Fault> {
        if value.len() <= CHUNK {
            Ok(Etcd::inline(value))
        } else {
            self.write_chunks(table, key, value)
        }
    }
}

/// One transaction's reads and buffered writes.
struct EtcdTxn<'a> {
    etcd: &'a Etcd,
    /// Every key read: its `mod_revision`, 0 when absent.
    read: RefCell<BTreeMap<Vec<u8>, i64>>,
    /// Every key written: its stored bytes, or `None` for a removal.
    written: RefCell<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl Txn for EtcdTxn<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Abort> {
        let full = self.etcd.row_key(table, key);
        if let Some(w) = self.written.borrow().get(&full) {
            return match w {
                Some(stored) => Ok(Some(self.etcd.decode(table, key, stored)?)),
                None => Ok(None),
            };
        }
        let found = self.etcd.get_cached(full.clone())?;
        self.read
            .borrow_mut()
            .entry(full)
            .or_insert(found.as_ref().map_or(0, |(_, rev)| *rev));
        match found {
            Some((stored, _)) => Ok(Some(self.etcd.decode(table, key, &stored)?)),
            None => Ok(None),
        }
    }

    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Abort> {
        let stored = self.etcd.stored(table, key, value)?;
        self.written
            .borrow_mut()
            .insert(self.etcd.row_key(table, key), Some(stored));
        Ok(())
    }

    fn remove(&self, table: Table, key: &[u8]) -> Result<(), Abort> {
        self.written
            .borrow_mut()
            .insert(self.etcd.row_key(table, key), None);
        Ok(())
    }
}

/// How a commit's `Txn` ended.
enum Committed {
    Yes,
    /// A compare failed: what the body read changed.
    Conflict,
}

impl Etcd {
    fn commit(
        &self,
        read: BTreeMap<Vec<u8>, i64>,
        written: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Result<Committed, Fault> {
        let fence = self.fence_compare()?;
        let count = self.commits.load(Ordering::SeqCst) + 1;
        let mut compares: Vec<Compare> = read
            .into_iter()
            .map(|(key, rev)| match rev {
                0 => Compare::create_revision(key, CompareOp::Equal, 0),
                rev => Compare::mod_revision(key, CompareOp::Equal, rev),
            })
            .collect();
        compares.push(fence);
        let mut ops: Vec<TxnOp> = written
            .iter()
            .map(|(key, value)| match value {
                Some(v) => TxnOp::put(key.clone(), v.clone(), None),
                None => TxnOp::delete(key.clone(), None),
            })
            .collect();
        ops.push(TxnOp::put(
            self.marker.clone(),
            count.to_be_bytes().to_vec(),
            None,
        ));
        // Sent again while the cluster is unavailable (see `call`). A
        // resend of a commit that had landed fails its compares, and a
        // request that got no answer may have landed: either way the
        // marker says.
        let sent = self.call(move |mut c| {
            let txn = etcd_client::Txn::new()
                .when(compares.clone())
                .and_then(ops.clone());
            async move {
                c.txn(txn)
                    .await
                    .map(|r| (r.succeeded(), r.header().map_or(0, |h| h.revision())))
            }
        });
        let landed = || -> Result<Option<i64>, Fault> {
            let now = self.get_raw(self.marker.clone())?;
            Ok(now
                .filter(|(v, _)| *v == count.to_be_bytes())
                .map(|(_, rev)| rev))
        };
        let revision = match sent {
            Ok((true, revision)) => revision,
            Ok((false, _)) | Err(_) if let Some(revision) = landed()? => revision,
            Ok((false, _)) => {
                self.lock_cache().clear();
                if !self.still_leads()? {
                    return Err(self.deposed());
                }
                return Ok(Committed::Conflict);
            }
            Err(e) => {
                self.lock_cache().clear();
                return Err(fault(format!("a commit failed: {e}")));
            }
        };
        self.commits.store(count, Ordering::SeqCst);
        // What this commit wrote is what the next transaction reads.
        let mut cache = self.lock_cache();
        for (key, value) in written {
            if let Some(entry) = cache.get_mut(&key) {
                *entry = match value {
                    Some(v) => (Some(v), revision),
                    None => (None, 0),
                };
            }
        }
        Ok(Committed::Yes)
    }
}

impl Backend for Etcd {
    fn transact(&self, body: &dyn Fn(&dyn Txn) -> Result<(), Abort>) -> Result<(), Abort> {
        let mut wait = Duration::from_millis(1);
        for _ in 0..1_000 {
            let txn = EtcdTxn {
                etcd: self,
                read: RefCell::new(BTreeMap::new()),
                written: RefCell::new(BTreeMap::new()),
            };
            match body(&txn) {
                Ok(()) => {}
                Err(Abort::Conflict) => continue,
                Err(other) => return Err(other),
            }
            let (read, written) = (txn.read.into_inner(), txn.written.into_inner());
            if written.is_empty() {
                return Ok(());
            }
            match self.commit(read, written)? {
                Committed::Yes => return Ok(()),
                Committed::Conflict => {
                    // Another writer got there first: read again, after a
                    // moment that grows, so two busy writers take turns.
                    std::thread::sleep(wait.mul_f64(fastrand::f64()));
                    wait = (wait * 2).min(Duration::from_millis(50));
                }
            }
        }
        Err(Abort::Conflict)
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Fault> {
        match self.get_raw(self.row_key(table, key))? {
            Some((stored, _)) => self.decode(table, key, &stored).map(Some),
            None => Ok(None),
        }
    }

    fn scan(&self, table: Table, range: Range<'_>, reverse: bool) -> Result<Rows<'_>, Fault> {
        let base = self.table_prefix(table);
        let (mut from, mut to) = match range {
            Range::All => (base.clone(), prefix_end(&base)),
            Range::Prefix(p) => {
                let start = [&base[..], p].concat();
                let end = prefix_end(&start);
                (start, end)
            }
            Range::From(k) => ([&base[..], k].concat(), prefix_end(&base)),
        };
        let mut page: std::vec::IntoIter<(Vec<u8>, Vec<u8>)> = Vec::new().into_iter();
        let mut done = false;
        let rows = std::iter::from_fn(move || {
            loop {
                if let Some((key, stored)) = page.next() {
                    let short = key[base.len()..].to_vec();
                    return Some(
                        self.decode(table, &short, &stored)
                            .map(|value| (short, value)),
                    );
                }
                if done {
                    return None;
                }
                let (f, t) = (from.clone(), to.clone());
                let fetched = self.call(move |mut c| {
                    let (f, t) = (f.clone(), t.clone());
                    async move {
                        let mut options = GetOptions::new().with_range(t).with_limit(PAGE);
                        if reverse {
                            options = options.with_sort(SortTarget::Key, SortOrder::Descend);
                        }
                        let r = c.get(f, Some(options)).await?;
                        Ok((
                            r.kvs()
                                .iter()
                                .map(|kv| (kv.key().to_vec(), kv.value().to_vec()))
                                .collect::<Vec<_>>(),
                            r.more(),
                        ))
                    }
                });
                let (rows, more) = match fetched {
                    Ok(v) => v,
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                };
                done = !more || rows.is_empty();
                if let Some((last, _)) = rows.last() {
                    if reverse {
                        to = last.clone();
                    } else {
                        from = [&last[..], &[0u8][..]].concat();
                    }
                }
                page = rows.into_iter();
            }
        });
        Ok(Box::new(rows))
    }

    fn put_new(&self, table: Table, key: &[u8], value: &[u8]) -> Result<bool, Fault> {
        let full = self.row_key(table, key);
        if self.get_raw(full.clone())?.is_some() {
            return Ok(false);
        }
        let stored = self.stored(table, key, value)?;
        self.lock_cache().remove(&full);
        self.fenced(
            vec![Compare::create_revision(full.clone(), CompareOp::Equal, 0)],
            vec![TxnOp::put(full, stored, None)],
        )
    }

    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Fault> {
        let full = self.row_key(table, key);
        let stored = self.stored(table, key, value)?;
        self.lock_cache().remove(&full);
        self.fenced(Vec::new(), vec![TxnOp::put(full, stored, None)])
            .map(|_| ())
    }

    fn remove(&self, table: Table, key: &[u8]) -> Result<(), Fault> {
        let full = self.row_key(table, key);
        let chunks = self.chunk_prefix(table, key);
        let end = prefix_end(&chunks);
        self.lock_cache().remove(&full);
        self.fenced(
            Vec::new(),
            vec![
                TxnOp::delete(full, None),
                TxnOp::delete(
                    chunks,
                    Some(etcd_client::DeleteOptions::new().with_range(end)),
                ),
            ],
        )
        .map(|_| ())
    }

    fn tables(&self) -> Result<Vec<String>, Fault> {
        let base = [&self.prefix[..], b"t/"].concat();
        let mut names = std::collections::BTreeSet::new();
        let mut from = base.clone();
        let to = prefix_end(&base);
        loop {
            let (f, t) = (from.clone(), to.clone());
            let (keys, more) = self.call(move |mut c| {
                let (f, t) = (f.clone(), t.clone());
                async move {
                    let r = c
                        .get(
                            f,
                            Some(
                                GetOptions::new()
                                    .with_range(t)
                                    .with_keys_only()
                                    .with_limit(PAGE),
                            ),
                        )
                        .await?;
                    let keys: Vec<Vec<u8>> = r.kvs().iter().map(|kv| kv.key().to_vec()).collect();
                    Ok((keys, r.more()))
                }
            })?;
            for k in &keys {
                if let Some(name) = k[base.len()..].split(|b| *b == b'/').next() {
                    names.insert(String::from_utf8_lossy(name).into_owned());
                }
            }
            match keys.last() {
                Some(last) if more => from = [&last[..], &[0u8][..]].concat(),
                _ => break,
            }
        }
        Ok(names.into_iter().collect())
    }

    /// A committed `Txn` is already durable on a quorum.
    fn flush(&self) -> Result<(), Fault> {
        Ok(())
    }

    fn closer(&self) -> Result<Box<dyn FnOnce() -> Result<(), Fault> + Send>, Fault> {
        Ok(Box::new(|| Ok(())))
    }

    fn lead(&self) -> Option<watch::Receiver<Lead>> {
        Some(self.lead.subscribe())
    }

    fn follow(
        &self,
        tables: &[Table],
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<(Table, Vec<u8>)>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let rows = [&self.prefix[..], b"t/"].concat();
        let wanted: Vec<(Table, Vec<u8>)> =
            tables.iter().map(|t| (*t, self.table_prefix(*t))).collect();
        let mut c = self.client.clone();
        self.runtime().spawn(async move {
            let mut from = 0i64;
            while !tx.is_closed() {
                // Whatever was written before the watch (re)starts is read
                // again: an empty key stands for "the whole table".
                for (t, _) in &wanted {
                    let _ = tx.send((*t, Vec::new()));
                }
                let mut options = etcd_client::WatchOptions::new().with_prefix();
                if from > 0 {
                    options = options.with_start_revision(from);
                }
                match c.watch(rows.clone(), Some(options)).await {
                    Ok(mut stream) => loop {
                        match stream.message().await {
                            Ok(Some(r)) if r.canceled() => {
                                // Compacted past `from`: start from now.
                                from = 0;
                                break;
                            }
                            Ok(Some(r)) => {
                                for e in r.events() {
                                    let Some(kv) = e.kv() else { continue };
                                    from = kv.mod_revision() + 1;
                                    if e.event_type() != etcd_client::EventType::Put {
                                        continue;
                                    }
                                    for (t, p) in &wanted {
                                        if let Some(key) = kv.key().strip_prefix(&p[..]) {
                                            let _ = tx.send((*t, key.to_vec()));
                                        }
                                    }
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                tracing::debug!("the etcd watch broke: {e}; watching again");
                                break;
                            }
                        }
                    },
                    Err(e) => tracing::debug!("cannot watch etcd: {e}; trying again"),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Some(rx)
    }

    fn cluster(&self) -> Option<Result<ClusterView, Fault>> {
        Some(self.view())
    }

    fn resign(&self) -> Result<(), Fault> {
        // No write after this one, whatever is still running.
        self.lost.store(true, Ordering::SeqCst);
        let lease = self.lease.load(Ordering::SeqCst);
        // Revoking deletes the leader and member keys held under it.
        self.call(move |mut c| async move { c.lease_revoke(lease).await.map(|_| ()) })?;
        tracing::info!("this daemon gave up its lease and the lead, if it held it");
        Ok(())
    }
}

impl Etcd {
    fn view(&self) -> Result<ClusterView, Fault> {
        let members_at = [&self.prefix[..], b"members/"].concat();
        let (leader_key, end) = (self.leader.clone(), prefix_end(&members_at));
        let (members, leader) = self.call(move |mut c| {
            let (from, to, leader_key) = (members_at.clone(), end.clone(), leader_key.clone());
            async move {
                let r = c.get(from, Some(GetOptions::new().with_range(to))).await?;
                let members: Vec<Member> = r
                    .kvs()
                    .iter()
                    .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
                    .collect();
                let leader = c.get(leader_key, None).await?;
                let leader = leader.kvs().first().map(|kv| {
                    let m: Option<Member> = serde_json::from_slice(kv.value()).ok();
                    (m.map(|m| m.id).unwrap_or_default(), kv.lease())
                });
                let lease = match leader {
                    Some((_, lease)) if lease != 0 => {
                        let t = c.lease_time_to_live(lease, None).await?;
                        Some((t.ttl(), t.granted_ttl()))
                    }
                    _ => None,
                };
                Ok((members, leader.map(|(id, _)| id).zip(Some(lease))))
            }
        })?;
        let mut endpoints = Vec::new();
        for endpoint in &self.settings.endpoints {
            let e = endpoint.clone();
            let started = Instant::now();
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            self.runtime().spawn(async move {
                let asked = async {
                    let options = options()
                        .with_connect_timeout(Duration::from_secs(1))
                        .with_timeout(Duration::from_secs(1));
                    let mut c = Client::connect([e], Some(options)).await?;
                    let s = c.status().await?;
                    let me = s.header().map_or(0, |h| h.member_id());
                    Ok::<_, etcd_client::Error>((s.version().to_string(), s.leader() == me))
                };
                let _ = tx.send(asked.await);
            });
            let answer = rx.recv().map_err(fault)?;
            let took_ms = started.elapsed().as_millis() as u64;
            endpoints.push(match answer {
                Ok((version, raft_leader)) => EndpointHealth {
                    endpoint: endpoint.clone(),
                    healthy: true,
                    version,
                    raft_leader,
                    took_ms,
                    error: None,
                },
                Err(e) => EndpointHealth {
                    endpoint: endpoint.clone(),
                    took_ms,
                    error: Some(e.to_string()),
                    ..Default::default()
                },
            });
        }
        let (leader, lease) = match leader {
            Some((id, lease)) => (Some(id), lease),
            None => (None, None),
        };
        Ok(ClusterView {
            store: "etcd".into(),
            prefix: self.settings.prefix.clone(),
            members,
            leader,
            lease_left_s: lease.map(|(left, _)| left),
            lease_ttl_s: lease.map(|(_, ttl)| ttl),
            endpoints,
        })
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // A runtime may not be dropped where blocking is not allowed (on a
        // reactor thread); let it wind down on its own.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
