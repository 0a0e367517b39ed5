//! The seam under the store: what a storage engine must offer for the
//! daemon to keep its promises, and nothing of what the daemon keeps.
//!
//! A backend holds named tables of byte keys and byte values. Its surface is
//! exactly what the layers above need:
//! - [`Backend::transact`]: an atomic, serialisable transaction over any
//!   tables, durable when it returns. Whatever the body read is compared at
//!   commit (sled's optimistic transactions; an etcd `Txn` comparing
//!   `mod_revision`s), and a conflict runs the body again, so a body decides
//!   on what it read and nothing else.
//! - reads outside a transaction, by key or in key order;
//! - blobs written once under their content address, too large or too
//!   immutable to belong in a transaction.
//!
//! The audit chain, ids, typed records and the announcement of events are
//! built on this by [`super::Store`], once for every backend.

use super::Refusal;

/// A table's name. Each module that owns a record type names its tables
/// (e.g. `pipeline::release::storage::RELEASES`); the backend knows them
/// only as names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Table(pub &'static str);

/// A failure of the storage engine itself (disk, corruption), as opposed to
/// a transaction that chose not to commit.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct Fault {
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
    /// The disk is full (ENOSPC): the remedy is room, not repair.
    pub full_disk: bool,
    /// This daemon no longer leads the daemons sharing the backend: the
    /// remedy is to stop and rejoin as a follower.
    pub lost_lead: bool,
}

impl Fault {
    /// A fault from an I/O error, recognising a full disk.
    pub fn io(e: std::io::Error) -> Fault {
        let full_disk = e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull;
        Fault {
            source: Box::new(e),
            full_disk,
            lost_lead: false,
        }
    }

    pub fn other(message: impl Into<String>) -> Fault {
        Fault {
            source: message.into().into(),
            full_disk: false,
            lost_lead: false,
        }
    }

    /// This daemon lost the lead: its writes are refused.
    pub fn lost_lead(message: impl Into<String>) -> Fault {
        Fault {
            lost_lead: true,
            ..Fault::other(message)
        }
    }
}

/// Why a transaction body stopped.
#[derive(Debug)]
pub enum Abort {
    /// The body refused: nothing is written and the caller is told why.
    Refused(Refusal),
    /// What the body read changed under it: the backend runs it again.
    Conflict,
    /// The engine failed.
    Fault(Fault),
}

impl From<Fault> for Abort {
    fn from(f: Fault) -> Abort {
        Abort::Fault(f)
    }
}

impl From<Refusal> for Abort {
    fn from(r: Refusal) -> Abort {
        Abort::Refused(r)
    }
}

/// Reads and writes inside one transaction.
pub trait Txn {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Abort>;
    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Abort>;
    fn remove(&self, table: Table, key: &[u8]) -> Result<(), Abort>;
}

/// Which rows of a table a scan visits, in key order.
#[derive(Debug, Clone, Copy)]
pub enum Range<'a> {
    All,
    Prefix(&'a [u8]),
    /// Keys at or after this one.
    From(&'a [u8]),
}

pub type Rows<'a> = Box<dyn Iterator<Item = Result<super::Row, Fault>> + Send + 'a>;

pub trait Backend: Send + Sync {
    /// Runs `body` as one atomic transaction and makes it durable before
    /// returning. `body` may run more than once (see the module rules).
    fn transact(&self, body: &dyn Fn(&dyn Txn) -> Result<(), Abort>) -> Result<(), Abort>;

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Fault>;

    /// Rows in key order, or in reverse.
    fn scan(&self, table: Table, range: Range<'_>, reverse: bool) -> Result<Rows<'_>, Fault>;

    /// Writes `value` under `key` unless the key is there; says whether it
    /// was. For content-addressed blobs (candidates, attachments), whose
    /// bytes never change once written.
    fn put_new(&self, table: Table, key: &[u8], value: &[u8]) -> Result<bool, Fault>;

    /// Writes outside any transaction, made durable by the next commit or
    /// flush: for records losing which costs only work (a compiled
    /// artefact's size), and for tools that repair or tamper on purpose.
    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Fault>;

    fn remove(&self, table: Table, key: &[u8]) -> Result<(), Fault>;

    fn flush(&self) -> Result<(), Fault>;

    /// The names of the tables that hold rows, for tools that copy a whole
    /// store.
    fn tables(&self) -> Result<Vec<String>, Fault>;

    /// Flushes, then gives what waits, once every handle of this backend is
    /// dropped, until the engine has let go of its files.
    fn closer(&self) -> Result<Box<dyn FnOnce() -> Result<(), Fault> + Send>, Fault>;

    /// This daemon's place among those sharing the backend; `None`: nobody
    /// shares it, so this daemon always leads.
    fn lead(&self) -> Option<tokio::sync::watch::Receiver<super::cluster::Lead>> {
        None
    }

    /// The keys of `tables` as other daemons write them (puts only), for a
    /// follower to keep up; `None` when nobody else writes.
    fn follow(
        &self,
        _tables: &[Table],
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<(Table, Vec<u8>)>> {
        None
    }

    /// Gives up the lead at once, for a graceful stop: another daemon takes
    /// over without waiting for this one's lease, and nothing this one
    /// writes afterwards is accepted. Blocking.
    fn resign(&self) -> Result<(), Fault> {
        Ok(())
    }

    /// The daemons sharing the backend, its leader and the health of what
    /// holds it; `None` for a backend of one daemon. Blocking.
    fn cluster(&self) -> Option<Result<super::cluster::ClusterView, Fault>> {
        None
    }
}
