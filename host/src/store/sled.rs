//! The embedded backend: one sled database in the data directory, one sled
//! tree per table, the default for a daemon on one machine.
//!
//! Rules: a transaction spans every table ever written in a transaction
//! (sled's multi-tree transactions need their trees up front); a body that
//! reaches for a table not yet among them is stopped before it writes, the
//! table is opened, and the body runs again. Every transaction is flushed to
//! disk before `transact` returns. sled 0.34 can deadlock when transactions
//! and async flushes run side by side on reactor threads (sled#1308): the
//! store commits one at a time, with a blocking flush, off the reactor.

use super::backend::{Abort, Backend, Fault, Range, Rows, Table, Txn};
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub struct Sled {
    db: sled::Db,
    dir: PathBuf,
    trees: RwLock<HashMap<&'static str, sled::Tree>>,
    /// The tables transactions span, in the order they were first written.
    transactional: RwLock<Vec<(&'static str, sled::Tree)>>,
}

/// A sled error as a backend fault, a full disk recognised as one.
pub(super) fn fault(e: sled::Error) -> Fault {
    match e {
        sled::Error::Io(io) => Fault::io(io),
        other => Fault {
            source: Box::new(other),
            full_disk: false,
            lost_lead: false,
        },
    }
}

impl Sled {
    pub fn open(dir: &Path) -> Result<Sled, Fault> {
        let db = sled::Config::new().path(dir).open().map_err(fault)?;
        Ok(Sled {
            db,
            dir: dir.to_path_buf(),
            trees: RwLock::new(HashMap::new()),
            transactional: RwLock::new(Vec::new()),
        })
    }

    /// Whether `dir` holds a sled database (its pages in `db`, its settings
    /// in `conf`).
    pub fn exists(dir: &Path) -> bool {
        dir.join("db").is_file() && dir.join("conf").is_file()
    }

    /// Whether opening failed because another process holds the directory.
    pub fn is_held(fault: &Fault) -> bool {
        match fault.source.downcast_ref::<std::io::Error>() {
            Some(e) => e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock"),
            None => false,
        }
    }

    pub(super) fn db(&self) -> &sled::Db {
        &self.db
    }

    pub(super) fn tree(&self, table: Table) -> Result<sled::Tree, Fault> {
        if let Some(t) = self
            .trees
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(table.0)
        {
            return Ok(t.clone());
        }
        let tree = self.db.open_tree(table.0).map_err(fault)?;
        self.trees
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(table.0, tree.clone());
        Ok(tree)
    }

    fn join_transactions(&self, table: Table) -> Result<(), Fault> {
        let tree = self.tree(table)?;
        let mut set = self
            .transactional
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if !set.iter().any(|(n, _)| *n == table.0) {
            set.push((table.0, tree));
        }
        Ok(())
    }
}

struct SledTxn<'a> {
    names: &'a [(&'static str, sled::Tree)],
    views: &'a [TransactionalTree],
    /// A table the body asked for that this transaction does not span.
    missing: &'a Cell<Option<Table>>,
}

impl SledTxn<'_> {
    fn view(&self, table: Table) -> Result<&TransactionalTree, Abort> {
        match self.names.iter().position(|(n, _)| *n == table.0) {
            Some(i) => Ok(&self.views[i]),
            None => {
                self.missing.set(Some(table));
                Err(Abort::Fault(Fault::other(format!(
                    "table {} is not open for transactions",
                    table.0
                ))))
            }
        }
    }
}

fn unabortable(e: UnabortableTransactionError) -> Abort {
    match e {
        UnabortableTransactionError::Conflict => Abort::Conflict,
        UnabortableTransactionError::Storage(e) => Abort::Fault(fault(e)),
    }
}

impl Txn for SledTxn<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Abort> {
        let v = self.view(table)?.get(key).map_err(unabortable)?;
        Ok(v.map(|v| v.to_vec()))
    }

    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Abort> {
        self.view(table)?.insert(key, value).map_err(unabortable)?;
        Ok(())
    }

    fn remove(&self, table: Table, key: &[u8]) -> Result<(), Abort> {
        self.view(table)?.remove(key).map_err(unabortable)?;
        Ok(())
    }
}

impl Backend for Sled {
    fn transact(&self, body: &dyn Fn(&dyn Txn) -> Result<(), Abort>) -> Result<(), Abort> {
        loop {
            let set = self
                .transactional
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let trees: Vec<sled::Tree> = set.iter().map(|(_, t)| t.clone()).collect();
            let missing = Cell::new(None);
            let result = trees.as_slice().transaction(|views| {
                let txn = SledTxn {
                    names: &set,
                    views,
                    missing: &missing,
                };
                body(&txn).map_err(|a| match a {
                    Abort::Conflict => ConflictableTransactionError::Conflict,
                    other => ConflictableTransactionError::Abort(other),
                })
            });
            match result {
                Ok(()) => return self.flush().map_err(Abort::Fault),
                Err(TransactionError::Abort(_)) if missing.get().is_some() => {
                    if let Some(table) = missing.get() {
                        self.join_transactions(table)?;
                    }
                }
                Err(TransactionError::Abort(a)) => return Err(a),
                Err(TransactionError::Storage(e)) => return Err(Abort::Fault(fault(e))),
            }
        }
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, Fault> {
        let v = self.tree(table)?.get(key).map_err(fault)?;
        Ok(v.map(|v| v.to_vec()))
    }

    fn scan(&self, table: Table, range: Range<'_>, reverse: bool) -> Result<Rows<'_>, Fault> {
        let tree = self.tree(table)?;
        let iter = match range {
            Range::All => tree.iter(),
            Range::Prefix(p) => tree.scan_prefix(p),
            Range::From(k) => tree.range(k.to_vec()..),
        };
        let rows = |item: Result<(sled::IVec, sled::IVec), sled::Error>| {
            item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(fault)
        };
        Ok(if reverse {
            Box::new(iter.rev().map(rows))
        } else {
            Box::new(iter.map(rows))
        })
    }

    fn put_new(&self, table: Table, key: &[u8], value: &[u8]) -> Result<bool, Fault> {
        let previous = self
            .tree(table)?
            .compare_and_swap(key, None as Option<&[u8]>, Some(value))
            .map_err(fault)?;
        Ok(previous.is_err())
    }

    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), Fault> {
        self.tree(table)?.insert(key, value).map_err(fault)?;
        Ok(())
    }

    fn remove(&self, table: Table, key: &[u8]) -> Result<(), Fault> {
        self.tree(table)?.remove(key).map_err(fault)?;
        Ok(())
    }

    fn tables(&self) -> Result<Vec<String>, Fault> {
        Ok(self
            .db
            .tree_names()
            .into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            // sled's own default tree holds nothing of ours.
            .filter(|n| n != "__sled__default")
            .collect())
    }

    fn flush(&self) -> Result<(), Fault> {
        self.db.flush().map_err(fault)?;
        Ok(())
    }

    /// A drop alone leaves letting go of the directory's lock to sled's
    /// background threads; the closer waits for it (10 s at most), so the
    /// directory opens again at once (a test, a tool, a restart in the same
    /// process).
    fn closer(&self) -> Result<Box<dyn FnOnce() -> Result<(), Fault> + Send>, Fault> {
        self.flush()?;
        let lock = self.dir.join("db");
        Ok(Box::new(move || {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&lock)
                .map_err(Fault::io)?;
            for _ in 0..400 {
                match file.try_lock() {
                    Ok(()) => {
                        let _ = file.unlock();
                        return Ok(());
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(25)),
                }
            }
            Err(Fault::io(std::io::Error::other(format!(
                "{} is still locked 10 s after closing: another handle of this store is open",
                lock.display()
            ))))
        }))
    }
}
