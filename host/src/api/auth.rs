//! Who is calling, and what their role lets them do.
//!
//! Callers present `authorization: Bearer <token>`. The daemon keeps only the
//! sha256 of each token; tokens are long random strings, so a plain hash is
//! enough to make a stolen config useless.
//!
//! Roles: `reader` reads; `ci` submits; `operator` approves, aborts, rolls
//! back and drills; `service` is for serving services, which read their
//! configuration and report canary observations and nothing else; `admin`
//! may do everything. Operators may report too, to feed a canary by hand.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use tonic::{Request, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads releases, configurations and the audit log.
    Reader,
    /// Submits releases, and reads.
    Ci,
    /// Approves, aborts and rolls back, and reads.
    Operator,
    /// A serving service: reads configurations and reports canary
    /// observations.
    Service,
    /// Everything.
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Submit,
    Operate,
    /// Push, activate and roll back plugins.
    Administer,
    /// Report what a canary's arms served.
    Report,
}

impl Role {
    pub fn allows(self, p: Permission) -> bool {
        matches!(
            (self, p),
            (_, Permission::Read)
                | (Role::Ci, Permission::Submit)
                | (Role::Operator, Permission::Operate | Permission::Report)
                | (Role::Service, Permission::Report)
                | (Role::Admin, _)
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Reader => "reader",
            Role::Ci => "ci",
            Role::Operator => "operator",
            Role::Service => "service",
            Role::Admin => "admin",
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Permission::Read => "read",
            Permission::Submit => "submit releases",
            Permission::Operate => "approve, abort and roll back",
            Permission::Administer => "push, activate and roll back plugins",
            Permission::Report => "report canary observations",
        })
    }
}

/// An authenticated caller, attached to each request by [`Tokens`].
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    pub fn require(&self, p: Permission) -> Result<(), Status> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "token {:?} has role {}, which may not {p}; ask an admin for a token with a role that may",
                self.name, self.role
            )))
        }
    }
}

/// A token as configured: its name, role and the sha256 of its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    /// Lowercase hex sha256 of the token.
    pub sha256: String,
}

/// The tokens the daemon accepts; also the interceptor that checks them.
/// Clones share one set, so [`Tokens::replace`] reaches every service.
#[derive(Clone, Default)]
pub struct Tokens(Arc<RwLock<Arc<Admitted>>>);

/// Who each token (by its sha256) admits.
type Admitted = HashMap<[u8; 32], Caller>;

#[derive(Debug, thiserror::Error)]
#[error(
    "token {name:?}: sha256 {value:?} is not 64 hex characters; compute it with `gatehouse token new`"
)]
pub struct BadTokenHash {
    name: String,
    value: String,
}

impl Tokens {
    pub fn new(entries: &[TokenEntry]) -> Result<Tokens, BadTokenHash> {
        let mut map = HashMap::new();
        for e in entries {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&e.sha256, &mut hash).map_err(|_| BadTokenHash {
                name: e.name.clone(),
                value: e.sha256.clone(),
            })?;
            map.insert(
                hash,
                Caller {
                    name: e.name.clone(),
                    role: e.role,
                },
            );
        }
        Ok(Tokens(Arc::new(RwLock::new(Arc::new(map)))))
    }

    fn current(&self) -> Arc<Admitted> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    /// Who the tokens admit, by name, with their roles, sorted.
    pub fn callers(&self) -> Vec<Caller> {
        let mut callers: Vec<Caller> = self.current().values().cloned().collect();
        callers.sort_by(|a, b| a.name.cmp(&b.name));
        callers
    }

    /// Accepts `other`'s tokens from now on, and no others: a call already
    /// admitted finishes.
    pub fn replace(&self, other: &Tokens) {
        let fresh = other.current();
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = fresh;
    }

    /// Who the `authorization` header's bearer token admits.
    pub fn check(&self, header: Option<&str>) -> Result<Caller, Status> {
        let Some(value) = header else {
            return Err(Status::unauthenticated(
                "no token; send `authorization: Bearer <token>` (the CLI reads --token or GATEHOUSE_TOKEN)",
            ));
        };
        let token = value.strip_prefix("Bearer ").unwrap_or("").trim();
        if token.is_empty() {
            return Err(Status::unauthenticated(
                "the authorization header must be `Bearer <token>`",
            ));
        }
        self.current()
            .get(&hash_token(token))
            .cloned()
            .ok_or_else(|| {
                Status::unauthenticated("unknown token; check the token or ask an admin for one")
            })
    }
}

impl tonic::service::Interceptor for Tokens {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let header = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let caller = self.check(header)?;
        req.extensions_mut().insert(caller);
        Ok(req)
    }
}

/// The caller the interceptor attached to a request.
pub fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("request was not authenticated"))
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new random token: `gatehouse_` and 64 hex characters.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("gatehouse_{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_product_promises() {
        use Permission::*;
        let table = [
            (Role::Reader, [true, false, false, false, false]),
            (Role::Ci, [true, true, false, false, false]),
            (Role::Operator, [true, false, true, false, true]),
            (Role::Service, [true, false, false, false, true]),
            (Role::Admin, [true, true, true, true, true]),
        ];
        for (role, expect) in table {
            assert_eq!(
                [
                    role.allows(Read),
                    role.allows(Submit),
                    role.allows(Operate),
                    role.allows(Administer),
                    role.allows(Report)
                ],
                expect,
                "{role}"
            );
        }
    }

    #[test]
    fn token_is_checked_by_hash_and_unknown_ones_are_refused() {
        let token = generate_token().unwrap();
        let tokens = Tokens::new(&[TokenEntry {
            name: "ci-bot".into(),
            role: Role::Ci,
            sha256: hex::encode(hash_token(&token)),
        }])
        .unwrap();
        let c = tokens.check(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(c.name, "ci-bot");
        assert_eq!(
            tokens.check(None).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            tokens.check(Some("Bearer nope")).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            tokens.check(Some(&token)).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }
}
