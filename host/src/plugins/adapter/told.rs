//! What an environment's adapter was last told, part by part, and how a
//! call changes it by the adapter contract: the bookkeeping behind the
//! check that the adapter and the store's record agree (see the parent
//! module's rules).

use crate::configstore::EnvState;
use crate::digest::Digest;
use crate::plugins::{AdapterCall, LiveState};

/// What an environment's adapter was last told; `None` where unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Told {
    pub active: Option<Option<Digest>>,
    /// The canary and its weight, or `Some(None)` when told there is none.
    pub canary: Option<Option<(Digest, u32)>>,
}

impl Told {
    /// What the store records as live, every part known.
    pub fn recorded(state: &EnvState) -> Told {
        Told {
            active: Some(state.active.as_ref().map(|d| d.digest)),
            canary: Some(
                state
                    .canary
                    .as_ref()
                    .map(|d| (d.digest, state.canary_weight_percent)),
            ),
        }
    }

    /// What the adapter holds after `call` succeeded, by the adapter
    /// contract (`gatehouse:plugin/adapter`).
    pub(super) fn after(&self, call: &AdapterCall, answer: Option<&LiveState>) -> Told {
        match call {
            AdapterCall::Apply { candidate, .. } => Told {
                active: Some(Some(candidate.digest)),
                // Applying the canary's candidate promotes it.
                canary: match self.canary {
                    Some(Some((c, _))) if c == candidate.digest => Some(None),
                    known => known,
                },
            },
            AdapterCall::SetTraffic {
                canary,
                weight_percent,
                ..
            } => Told {
                active: self.active,
                canary: Some(Some((canary.digest, u32::from(*weight_percent)))),
            },
            AdapterCall::Rollback { restore, .. } => Told {
                active: restore.as_ref().map(|r| Some(r.digest)),
                canary: Some(None),
            },
            AdapterCall::Current { .. } => match answer {
                Some(live) => Told::read_back(live),
                None => Told::default(),
            },
        }
    }

    fn read_back(live: &LiveState) -> Told {
        let digest = |d: &str| -> Result<Digest, ()> {
            let d = d.trim();
            d.strip_prefix("sha256:")
                .unwrap_or(d)
                .to_ascii_lowercase()
                .parse()
                .map_err(drop)
        };
        Told {
            active: live.active.as_deref().map(digest).transpose().ok(),
            canary: live
                .canary
                .as_deref()
                .map(|c| digest(c).map(|c| (c, u32::from(live.canary_weight_percent))))
                .transpose()
                .ok(),
        }
    }

    /// The known parts that differ from `recorded`, as `(part, told,
    /// recorded)` for the audit log.
    pub(super) fn breaches(&self, recorded: &Told) -> Vec<(&'static str, String, String)> {
        let show_active = |d: &Option<Digest>| d.map_or("nothing".into(), |d| d.hex());
        let show_canary = |c: &Option<(Digest, u32)>| {
            c.map_or("none".into(), |(d, w)| format!("{} at {w}%", d.hex()))
        };
        let mut out = Vec::new();
        if let (Some(told), Some(rec)) = (&self.active, &recorded.active)
            && told != rec
        {
            out.push(("active", show_active(told), show_active(rec)));
        }
        if let (Some(told), Some(rec)) = (&self.canary, &recorded.canary)
            && told != rec
        {
            out.push(("canary", show_canary(told), show_canary(rec)));
        }
        out
    }
}
