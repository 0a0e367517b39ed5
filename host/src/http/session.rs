//! Who is asking, for browsers as for scripts: a bearer token in the
//! `Authorization` header, or the session cookie `POST /login` set.
//!
//! Rules: the cookie holds a random session id, never the token; the
//! session maps it to the token, which is checked again on every request,
//! so a token dropped by a reload is refused at once, as in gRPC. The
//! cookie is `HttpOnly` (page scripts cannot read it), `SameSite=Strict`
//! (no other site's page sends it) and `Secure` under TLS. Every POST must
//! come from the dashboard itself: a `Sec-Fetch-Site` other than
//! `same-origin`/`none`, or an `Origin` other than the surface's own, is
//! refused with 403; a POST that authenticates with the cookie must also
//! carry the session's CSRF token in `X-Gatehouse-CSRF` (the login and
//! logout forms are covered by the origin check alone).

use super::{Surface, assets};
use crate::api::auth::Caller;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "gatehouse_session";
/// The header a cookie-authenticated POST carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-gatehouse-csrf";
/// How long a login lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the oldest goes first beyond it.
const MAX_SESSIONS: usize = 10_000;

/// One browser's login.
#[derive(Clone)]
struct Session {
    token: String,
    csrf: String,
    expires: Instant,
}

/// Logged-in browsers, by session id.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<String, Session>>>);

impl Sessions {
    fn open(&self, token: &str) -> Result<String, getrandom::Error> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                token: token.to_string(),
                csrf,
                expires: now + LIFETIME,
            },
        );
        Ok(id)
    }

    fn get(&self, id: &str) -> Option<Session> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    fn close(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// An authenticated caller, and the CSRF token of its session when it
/// came with the cookie.
pub struct Viewer {
    pub caller: Caller,
    pub csrf: Option<String>,
}

/// Why a request was not let in.
pub enum Refused {
    /// No valid token: 401.
    Unauthenticated(String),
    /// A cross-site or unproven POST, or a role that may not: 403.
    Forbidden(String),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Unauthenticated(m) => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                format!("{m}\n"),
            )
                .into_response(),
            Refused::Forbidden(m) => (StatusCode::FORBIDDEN, format!("{m}\n")).into_response(),
        }
    }
}

/// The session id the request's cookie names, if any.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

impl FromRequestParts<Surface> for Viewer {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, s: &Surface) -> Result<Viewer, Refused> {
        let unauthenticated = |e: tonic::Status| Refused::Unauthenticated(e.message().to_string());
        if let Some(bearer) = parts.headers.get(header::AUTHORIZATION) {
            let caller = s
                .tokens
                .check(bearer.to_str().ok())
                .map_err(unauthenticated)?;
            return Ok(Viewer { caller, csrf: None });
        }
        let Some(session) = session_id(&parts.headers).and_then(|id| s.sessions.get(id)) else {
            return Err(Refused::Unauthenticated(
                "no token; log in at /login, or send `Authorization: Bearer <token>`".into(),
            ));
        };
        let caller = s
            .tokens
            .check(Some(&format!("Bearer {}", session.token)))
            .map_err(unauthenticated)?;
        Ok(Viewer {
            caller,
            csrf: Some(session.csrf),
        })
    }
}

/// Refuses a POST another site's page could have sent; see the module
/// documentation. `viewer` is the caller when it authenticated: with the
/// cookie, its CSRF token must come too.
pub fn same_site(headers: &HeaderMap, viewer: Option<&Viewer>) -> Result<(), Refused> {
    let cross = |what: String| {
        Refused::Forbidden(format!(
            "cross-site request refused: {what}; operate from the dashboard's own pages (or call with `Authorization: Bearer <token>`)"
        ))
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("?");
        if site != "same-origin" && site != "none" {
            return Err(cross(format!("Sec-Fetch-Site is {site:?}")));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("?");
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let own = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .is_some_and(|rest| !host.is_empty() && rest == host);
        if !own {
            return Err(cross(format!(
                "Origin {origin:?} is not this dashboard's ({host:?})"
            )));
        }
    }
    if let Some(Viewer {
        csrf: Some(expected),
        ..
    }) = viewer
    {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if sent != Some(expected.as_str()) {
            return Err(cross(format!(
                "the {CSRF_HEADER} header does not carry this session's token"
            )));
        }
    }
    Ok(())
}

/// `POST /login` with the form field `token`: a session and its cookie,
/// then the dashboard; a refused token shows the login page again, saying
/// why.
pub async fn login(State(s): State<Surface>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = same_site(&headers, None) {
        return refused.into_response();
    }
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    if let Err(e) = s.tokens.check(Some(&format!("Bearer {token}"))) {
        let page = assets::login_with(Some(e.message()));
        return (StatusCode::UNAUTHORIZED, page).into_response();
    }
    let id = match s.sessions.open(&token) {
        Ok(id) => id,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("no session could be made ({e}); retry\n"),
            )
                .into_response();
        }
    };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.as_secs(),
        if s.secure { "; Secure" } else { "" }
    );
    with_cookie(Redirect::to("/"), &cookie)
}

/// `POST /logout`: the session ends and its cookie is cleared.
pub async fn logout(State(s): State<Surface>, headers: HeaderMap) -> Response {
    if let Err(refused) = same_site(&headers, None) {
        return refused.into_response();
    }
    if let Some(id) = session_id(&headers) {
        s.sessions.close(id);
    }
    let cookie = format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if s.secure { "; Secure" } else { "" }
    );
    with_cookie(Redirect::to("/login"), &cookie)
}

fn with_cookie(redirect: Redirect, cookie: &str) -> Response {
    let mut response = redirect.into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::Role;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn with_cookie(csrf: &str) -> Viewer {
        Viewer {
            caller: Caller {
                name: "oncall".into(),
                role: Role::Operator,
            },
            csrf: Some(csrf.into()),
        }
    }

    fn refused_because(r: Result<(), Refused>) -> String {
        match r {
            Err(Refused::Forbidden(m)) => m,
            Err(Refused::Unauthenticated(m)) => panic!("401, not 403: {m}"),
            Ok(()) => panic!("let through"),
        }
    }

    #[test]
    fn another_sites_post_is_refused_by_origin_or_fetch_metadata() {
        let m = refused_because(same_site(
            &headers(&[
                ("host", "127.0.0.1:7444"),
                ("origin", "http://evil.example"),
            ]),
            None,
        ));
        assert!(m.contains("cross-site request refused") && m.contains("evil.example"));
        let m = refused_because(same_site(
            &headers(&[("host", "127.0.0.1:7444"), ("sec-fetch-site", "cross-site")]),
            None,
        ));
        assert!(m.contains("Sec-Fetch-Site"), "{m}");
        refused_because(same_site(
            &headers(&[("host", "127.0.0.1:7444"), ("origin", "null")]),
            None,
        ));
    }

    #[test]
    fn a_cookie_post_needs_the_sessions_csrf_token_and_a_bearer_post_does_not() {
        let own = [
            ("host", "127.0.0.1:7444"),
            ("origin", "http://127.0.0.1:7444"),
            ("sec-fetch-site", "same-origin"),
        ];
        let m = refused_because(same_site(&headers(&own), Some(&with_cookie("abc"))));
        assert!(m.contains(CSRF_HEADER), "{m}");
        let mut wrong = own.to_vec();
        wrong.push((CSRF_HEADER, "abd"));
        refused_because(same_site(&headers(&wrong), Some(&with_cookie("abc"))));
        let mut right = own.to_vec();
        right.push((CSRF_HEADER, "abc"));
        assert!(same_site(&headers(&right), Some(&with_cookie("abc"))).is_ok());
        let bearer = Viewer {
            csrf: None,
            ..with_cookie("")
        };
        assert!(same_site(&headers(&[("host", "127.0.0.1:7444")]), Some(&bearer)).is_ok());
    }

    #[test]
    fn the_session_id_is_read_from_among_other_cookies() {
        let h = headers(&[("cookie", "theme=dark; gatehouse_session=s1; other=x")]);
        assert_eq!(session_id(&h), Some("s1"));
        assert_eq!(session_id(&headers(&[("cookie", "theme=dark")])), None);
    }
}
