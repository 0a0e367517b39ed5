//! The dashboard's pages and assets, embedded in the binary: no CDN, no
//! file on disk, so the dashboard works offline and matches its daemon.
//!
//! Rules: `/` needs a login (without one it redirects to `/login`); the
//! login page and the static assets hold no data and need none. Every
//! answer forbids framing and inline scripts (a strict Content Security
//! Policy), so a reason or name that slipped through escaping still runs
//! nothing.

use super::session::{Refused, Viewer};
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("assets/index.html");
const LOGIN: &str = include_str!("assets/login.html");
const APP_JS: &str = include_str!("assets/app.js");
const CHARTS_JS: &str = include_str!("assets/charts.js");
const APP_CSS: &str = include_str!("assets/app.css");

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers every page and asset carries.
fn guarded(mut response: Response, cache: &'static str) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

fn html(body: String) -> Response {
    guarded(
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        "no-store",
    )
}

/// `GET /`: the dashboard, once logged in.
pub async fn dashboard(viewer: Result<Viewer, Refused>) -> Response {
    match viewer {
        Ok(_) => html(INDEX.to_string()),
        Err(_) => Redirect::to("/login").into_response(),
    }
}

/// `GET /login`.
pub async fn login_page() -> Response {
    html(login_with(None))
}

/// The login page, saying why the last attempt was refused.
pub fn login_with(problem: Option<&str>) -> String {
    let shown = problem
        .map(|p| format!("<p class=\"error\" id=\"login-error\">{}</p>", escape(p)))
        .unwrap_or_default();
    LOGIN.replace("{{problem}}", &shown)
}

/// `GET /assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (kind, body) = match name.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "charts.js" => ("text/javascript; charset=utf-8", CHARTS_JS),
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    // Assets change only with the binary; a reload after an upgrade
    // revalidates them.
    guarded(
        ([(header::CONTENT_TYPE, kind)], body).into_response(),
        "no-cache",
    )
}

/// Text made safe to put in HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
