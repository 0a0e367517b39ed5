//! One environment's directory, `<dir>/<environment>/`: the slots it holds
//! and reading them back.
//!
//! A slot is a configuration's bytes (`NAME.json`) with its digest beside it
//! (`NAME.digest`): `active` (what the environment serves), `previous` (what
//! it served before, for rollback) and `canary`, plus `canary_weight` (the
//! canary's share of traffic, 0 to 100). The bytes are written before the
//! digest and the digest removed before the bytes, so a digest file only
//! ever names bytes that were completely written; a slot whose bytes do not
//! hash to its digest was torn by a crash or edited by hand, and is never
//! copied elsewhere.

use std::path::{Path, PathBuf};

use crate::atomic;
use crate::digest::{is_digest, sha256_hex};

/// The slots of an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Active,
    Previous,
    Canary,
}

impl Slot {
    pub fn name(self) -> &'static str {
        match self {
            Slot::Active => "active",
            Slot::Previous => "previous",
            Slot::Canary => "canary",
        }
    }

    fn bytes_file(self) -> String {
        format!("{}.json", self.name())
    }

    fn digest_file(self) -> String {
        format!("{}.digest", self.name())
    }
}

/// The file holding the canary's share of traffic.
pub const WEIGHT_FILE: &str = "canary_weight";

/// What a slot holds, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// What the digest file says, if there is one.
    pub digest: Option<String>,
    /// The sha256 of the bytes file, if there is one.
    pub actual: Option<String>,
    pub bytes: Vec<u8>,
}

impl Placed {
    /// Bytes and digest agree.
    pub fn intact(&self) -> bool {
        self.digest.is_some() && self.digest == self.actual
    }

    /// The slot holds exactly the configuration `digest`.
    pub fn holds(&self, digest: &str) -> bool {
        self.intact() && self.digest.as_deref() == Some(digest)
    }
}

/// `<dir>/<environment>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentDir {
    path: PathBuf,
}

impl EnvironmentDir {
    /// The directory of `environment` under `dir`; the name must be a plain
    /// file name, so an environment cannot reach outside `dir`.
    pub fn new(dir: &Path, environment: &str) -> Result<Self, String> {
        let plain = !environment.is_empty()
            && !environment.starts_with('.')
            && environment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain {
            return Err(format!(
                "environment {environment:?} cannot name a directory; use letters, digits, `-`, `_` and `.` (not first) in the pipeline's environment names"
            ));
        }
        Ok(Self {
            path: dir.join(environment),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether anything was ever placed here.
    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// Creates the directory if it is missing.
    pub fn create(&self) -> Result<(), String> {
        if self.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.path).map_err(|e| {
            format!(
                "cannot create {} ({e}); grant its parent to the adapter with writable = true in the manifest's [[files]]",
                self.path.display()
            )
        })
    }

    /// What `slot` holds; `None` when neither of its files exists.
    pub fn read(&self, slot: Slot) -> Result<Option<Placed>, String> {
        let bytes = atomic::read(&self.path, &slot.bytes_file())?;
        let digest = atomic::read(&self.path, &slot.digest_file())?
            .map(|text| String::from_utf8_lossy(&text).trim().to_string());
        if bytes.is_none() && digest.is_none() {
            return Ok(None);
        }
        Ok(Some(Placed {
            actual: bytes.as_deref().map(sha256_hex),
            digest,
            bytes: bytes.unwrap_or_default(),
        }))
    }

    /// Puts the configuration `digest` into `slot`: bytes first, then the
    /// digest that vouches for them.
    pub fn place(&self, slot: Slot, digest: &str, bytes: &[u8]) -> Result<(), String> {
        atomic::write(&self.path, &slot.bytes_file(), bytes)?;
        atomic::write(
            &self.path,
            &slot.digest_file(),
            format!("{digest}\n").as_bytes(),
        )
    }

    /// Empties `slot`: the digest first, so it never names missing bytes.
    pub fn clear(&self, slot: Slot) -> Result<(), String> {
        atomic::remove(&self.path, &slot.digest_file())?;
        atomic::remove(&self.path, &slot.bytes_file())
    }

    /// The canary's share of traffic; 0 when never set.
    pub fn weight(&self) -> Result<u8, String> {
        let Some(text) = atomic::read(&self.path, WEIGHT_FILE)? else {
            return Ok(0);
        };
        let text = String::from_utf8_lossy(&text);
        match text.trim().parse::<u8>() {
            Ok(weight) if weight <= 100 => Ok(weight),
            _ => Err(format!(
                "{} holds {:?}, not a weight; write a whole number from 0 to 100 into it, or remove it",
                self.path.join(WEIGHT_FILE).display(),
                text.trim()
            )),
        }
    }

    pub fn set_weight(&self, weight: u8) -> Result<(), String> {
        atomic::write(&self.path, WEIGHT_FILE, format!("{weight}\n").as_bytes())
    }
}

/// Why a slot's files cannot be trusted, for `current`'s detail; `None`
/// when they agree.
pub fn drift(slot: Slot, placed: &Placed) -> Option<String> {
    let name = slot.name();
    match (&placed.digest, &placed.actual) {
        (Some(digest), Some(actual)) if digest == actual => None,
        (Some(digest), _) if !is_digest(digest) => Some(format!(
            "{name}.digest holds {digest:?}, not a sha256 digest"
        )),
        (Some(digest), Some(actual)) => Some(format!(
            "{name}.json was changed outside Gatehouse: its sha256 is {actual}, {name}.digest says {digest}"
        )),
        (Some(digest), None) => Some(format!(
            "{name}.json is missing, {name}.digest says {digest}"
        )),
        (None, Some(actual)) => Some(format!(
            "{name}.json (sha256 {actual}) has no {name}.digest beside it"
        )),
        (None, None) => None,
    }
}
