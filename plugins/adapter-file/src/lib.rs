//! Environment adapter that places configurations as files in a directory
//! granted to it, for services that read their configuration from disk and
//! reload it when it changes.
//!
//! Each environment gets a directory, `<dir>/<environment>/`:
//!
//! | file | holds |
//! | --- | --- |
//! | `active.json`, `active.digest` | the configuration served, and its sha256 |
//! | `previous.json`, `previous.digest` | the one served before, for rollback |
//! | `canary.json`, `canary.digest` | the canary, while one runs |
//! | `canary_weight` | the canary's share of traffic, 0 to 100 |
//!
//! Every file is replaced atomically (temporary file, sync, rename, sync of
//! the directory where possible), and each call is idempotent by digest, so
//! the daemon may repeat any call after a crash:
//!
//! - `apply` of the digest already active changes nothing. Otherwise the
//!   active configuration, if intact, moves to `previous`, the candidate
//!   becomes active, and a canary of the same digest (a promotion) is taken
//!   out of traffic.
//! - `current` reads the digests and the weight back. When `active.json` no
//!   longer hashes to `active.digest` (edited by hand), `active` is the
//!   sha256 of what the file holds, what a service reading it serves, and
//!   `detail` says what drifted.
//! - `set_traffic` places the canary and writes its weight; a different
//!   canary is first taken to weight 0, so it never inherits another's share.
//! - `rollback` sets the weight to 0, removes the canary and makes `restore`
//!   active; with no `restore`, the intact `previous`, if there is one, else
//!   the active configuration stays. `previous` is left as it is, so a
//!   repeated rollback lands in the same place.
//!
//! Params, in the pipeline's adapter settings:
//!
//! ```toml
//! adapter = "adapter-file"
//! adapter_params = { dir = "/deploy" }
//! ```
//!
//! `dir` is the path the adapter sees, the `guest` of a writable directory
//! in the manifest the admin pushes with the plugin:
//!
//! ```toml
//! capabilities = ["files"]
//!
//! [[files]]
//! host = "/srv/model-config"   # on the daemon's machine; services read it
//! guest = "/deploy"
//! writable = true
//! ```

mod atomic;
pub mod digest;
pub mod environment;

use std::path::Path;

use gatehouse_plugin_sdk::serde_json::json;
use gatehouse_plugin_sdk::{
    Adapter, Candidate, Description, LiveState, ParamError, Target, export_adapter,
};
use serde::Deserialize;

use digest::{short, verify};
use environment::{EnvironmentDir, Slot, drift};

/// The adapter's params.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The granted directory, as the adapter sees it, e.g. "/deploy".
    pub dir: String,
}

impl gatehouse_plugin_sdk::Params for Params {
    fn check(&self) -> Result<(), ParamError> {
        if !self.dir.starts_with('/') {
            return Err(ParamError::new(
                "dir",
                format!(
                    "{:?} is not absolute; write the guest path the manifest's [[files]] grants, e.g. \"/deploy\"",
                    self.dir
                ),
            ));
        }
        Ok(())
    }
}

fn environment(target: &Target) -> Result<EnvironmentDir, String> {
    let params: Params = gatehouse_plugin_sdk::params::parse(&target.params)?;
    EnvironmentDir::new(Path::new(&params.dir), &target.environment)
}

/// The exported adapter.
pub struct FileAdapter;

impl Adapter for FileAdapter {
    type Params = Params;

    fn describe() -> Description {
        Description::adapter(
            "adapter-file",
            env!("CARGO_PKG_VERSION"),
            "Places configurations as files in a granted directory, one directory per environment",
        )
        .with_params_schema(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "adapter-file params",
            "type": "object",
            "additionalProperties": false,
            "required": ["dir"],
            "properties": {
                "dir": {
                    "description": "The granted writable directory as the adapter sees it (the manifest's [[files]] guest), e.g. \"/deploy\".",
                    "type": "string"
                }
            }
        }))
        .with_capability("files")
    }

    fn apply(target: Target, candidate: Candidate) -> Result<(), String> {
        apply(&environment(&target)?, &candidate)
    }

    fn current(target: Target) -> Result<LiveState, String> {
        current(&environment(&target)?)
    }

    fn set_traffic(target: Target, canary: Candidate, weight_percent: u8) -> Result<(), String> {
        set_traffic(&environment(&target)?, &canary, weight_percent)
    }

    fn rollback(target: Target, restore: Option<Candidate>) -> Result<(), String> {
        rollback(&environment(&target)?, restore.as_ref())
    }
}

export_adapter!(FileAdapter);

/// Makes `candidate` active; see the crate docs.
pub fn apply(env: &EnvironmentDir, candidate: &Candidate) -> Result<(), String> {
    verify(&candidate.digest, &candidate.bytes)?;
    env.create()?;
    let active = env.read(Slot::Active)?;
    if !active.as_ref().is_some_and(|a| a.holds(&candidate.digest)) {
        // Only intact bytes are worth keeping: a torn or hand-edited file
        // would restore something nobody released.
        if let Some(active) = active.filter(|a| a.intact())
            && let Some(digest) = &active.digest
        {
            env.place(Slot::Previous, digest, &active.bytes)?;
        }
        env.place(Slot::Active, &candidate.digest, &candidate.bytes)?;
    }
    if env
        .read(Slot::Canary)?
        .is_some_and(|c| c.holds(&candidate.digest))
    {
        env.set_weight(0)?;
        env.clear(Slot::Canary)?;
    }
    Ok(())
}

/// Reads back what the environment serves.
pub fn current(env: &EnvironmentDir) -> Result<LiveState, String> {
    let place = env.path().display();
    if !env.exists() {
        return Ok(LiveState {
            active: None,
            canary: None,
            canary_weight_percent: 0,
            detail: format!("nothing placed in {place} yet"),
        });
    }
    let active = env.read(Slot::Active)?;
    let canary = env.read(Slot::Canary)?;
    let weight = env.weight()?;
    // What a service reading the files serves is what the bytes hash to,
    // whatever the digest file says; no bytes, nothing served.
    let served =
        |placed: &Option<environment::Placed>| placed.as_ref().and_then(|p| p.actual.clone());
    let mut detail = format!(
        "read from {place}: active {}, canary {} at {weight}%",
        served(&active).as_deref().map_or("none", short),
        served(&canary).as_deref().map_or("none", short),
    );
    for (slot, placed) in [(Slot::Active, &active), (Slot::Canary, &canary)] {
        if let Some(problem) = placed.as_ref().and_then(|p| drift(slot, p)) {
            detail.push_str(&format!("; drift: {problem}"));
        }
    }
    Ok(LiveState {
        active: served(&active),
        canary: served(&canary),
        canary_weight_percent: weight,
        detail,
    })
}

/// Places `canary` and gives it `weight` percent of traffic.
pub fn set_traffic(env: &EnvironmentDir, canary: &Candidate, weight: u8) -> Result<(), String> {
    if weight > 100 {
        return Err(format!(
            "canary weight {weight}% is over 100%; the daemon sends 0 to 100"
        ));
    }
    verify(&canary.digest, &canary.bytes)?;
    env.create()?;
    let placed = env.read(Slot::Canary)?;
    if !placed.as_ref().is_some_and(|p| p.holds(&canary.digest)) {
        if placed.is_some() && env.weight()? != 0 {
            env.set_weight(0)?;
        }
        env.place(Slot::Canary, &canary.digest, &canary.bytes)?;
    }
    if env.weight()? != weight {
        env.set_weight(weight)?;
    }
    Ok(())
}

/// Takes the canary out and restores `restore`, or else `previous`.
pub fn rollback(env: &EnvironmentDir, restore: Option<&Candidate>) -> Result<(), String> {
    if let Some(restore) = restore {
        verify(&restore.digest, &restore.bytes)?;
    }
    if !env.exists() && restore.is_none() {
        return Ok(());
    }
    env.create()?;
    if env.weight()? != 0 {
        env.set_weight(0)?;
    }
    env.clear(Slot::Canary)?;
    let previous = env.read(Slot::Previous)?.filter(|p| p.intact());
    let target = match (restore, &previous) {
        (Some(c), _) => Some((c.digest.clone(), c.bytes.clone())),
        (None, Some(p)) => p.digest.clone().map(|d| (d, p.bytes.clone())),
        (None, None) => None,
    };
    if let Some((digest, bytes)) = target {
        let active = env.read(Slot::Active)?;
        if !active.is_some_and(|a| a.holds(&digest)) {
            env.place(Slot::Active, &digest, &bytes)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
