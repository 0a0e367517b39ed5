//! How each environment's state is kept: one record per environment, by
//! name, read and written in the same transactions as the releases that
//! change it.

use super::EnvState;
use crate::store::{self, Store, Table, Tx, TxResult};

/// name → the environment's state.
pub const ENVIRONMENTS: Table = Table("environments");

/// Reading an environment's record outside a transaction.
pub trait EnvReads {
    fn environment(&self, name: &str) -> Result<Option<EnvState>, store::Error>;
}

impl EnvReads for Store {
    fn environment(&self, name: &str) -> Result<Option<EnvState>, store::Error> {
        self.get(ENVIRONMENTS, name.as_bytes(), || {
            format!("environment {name}")
        })
    }
}

/// Reading and writing an environment's record inside a transaction.
pub trait EnvWrites {
    fn environment(&self, name: &str) -> TxResult<Option<EnvState>>;
    fn put_environment(&self, state: &EnvState) -> TxResult<()>;
}

impl EnvWrites for Tx<'_> {
    fn environment(&self, name: &str) -> TxResult<Option<EnvState>> {
        self.get(ENVIRONMENTS, name.as_bytes(), || {
            format!("environment {name}")
        })
    }

    fn put_environment(&self, state: &EnvState) -> TxResult<()> {
        self.put(ENVIRONMENTS, state.name.as_bytes(), state)
    }
}
