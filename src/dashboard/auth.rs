//! Who may use the dashboard (none, a token, or basic auth), the CSRF token
//! of its forms, and the same-origin check of every state-changing request.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::Engine as _;
use maud::html;
use serde::Deserialize;

use super::util::{base_of, Ctx};
use super::{pages, AppState};

/// How a dashboard admits its users.
#[derive(Clone)]
#[non_exhaustive]
pub(crate) enum AuthMode {
    /// Everyone who reaches it (the default: bind it to a loopback address).
    None,
    /// Whoever presents this token (bearer header, or the login cookie).
    Token(String),
    /// HTTP basic auth: these users and passwords.
    Basic(Vec<(String, String)>),
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        match self {
            AuthMode::None => f.write_str("None"),
            AuthMode::Token(_) => f.write_str("Token(..)"),
            AuthMode::Basic(users) => f
                .debug_tuple("Basic")
                .field(&users.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// The signed-in user, as the guard found them (`None` without basic auth).
#[derive(Debug, Clone, Default)]
pub(crate) struct User(pub(crate) Option<String>);

/// The cookie that carries the token after a login.
pub(crate) const TOKEN_COOKIE: &str = "jobs_dashboard_token";

/// 256 random bits, hex: the CSRF secret of one dashboard.
pub(crate) fn random_secret() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    let c = uuid::Uuid::new_v4();
    format!("{}{}{}", a.simple(), b.simple(), c.simple())
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn basic_user(headers: &HeaderMap, users: &[(String, String)]) -> Option<String> {
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    // Check every entry, so the time taken does not tell which user exists.
    let mut found = None;
    for (u, p) in users {
        if same_secret(u, user) & same_secret(p, pass) {
            found = Some(u.clone());
        }
    }
    found
}

/// The token of a `?token=` query, if any.
fn query_token(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token").then(|| super::util::pct_decode(v))
    })
}

fn token_cookie(base: &str, value: &str, max_age: Option<u32>) -> HeaderValue {
    let path = if base.is_empty() { "/" } else { base };
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{TOKEN_COOKIE}={value}; Path={path}; HttpOnly; SameSite=Strict{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Headers every response carries: a strict CSP (only the dashboard's own
/// scripts and styles, no inline script), no sniffing, no framing.
fn secure_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
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
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Admits a request or refuses it (`401`), per the dashboard's [`AuthMode`],
/// and records who made it.
pub(crate) async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let open = path.starts_with("/assets/") || path == "/login";
    let base = base_of(&state, &req);
    let mut user = User(None);
    let admitted = match &state.auth {
        AuthMode::None => true,
        AuthMode::Token(token) => {
            let headers = req.headers();
            let presented = bearer(headers).or_else(|| cookie_value(headers, TOKEN_COOKIE));
            if presented.is_some_and(|t| same_secret(t, token)) {
                true
            } else if req.method() == Method::GET {
                // `?token=` signs in: set the cookie, and drop the token from the address.
                if let Some(t) = query_token(req.uri().query()) {
                    if same_secret(&t, token) {
                        let mut res = Redirect::to(&format!("{base}{path}")).into_response();
                        res.headers_mut()
                            .insert(header::SET_COOKIE, token_cookie(&base, &t, None));
                        secure_headers(&mut res);
                        return res;
                    }
                }
                false
            } else {
                false
            }
        }
        AuthMode::Basic(users) => match basic_user(req.headers(), users) {
            Some(u) => {
                user = User(Some(u));
                true
            }
            None => false,
        },
    };
    let mut res = if admitted || open {
        req.extensions_mut().insert(user);
        next.run(req).await
    } else {
        refusal(&state, &base, &req)
    };
    secure_headers(&mut res);
    res
}

fn refusal(state: &AppState, base: &str, req: &Request) -> Response {
    match &state.auth {
        AuthMode::Basic(_) => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"jobs dashboard\", charset=\"UTF-8\"",
            )],
            "authentication required",
        )
            .into_response(),
        _ if req.method() == Method::GET
            && !req.uri().path().starts_with("/live/")
            && req.uri().path() != "/metrics" =>
        {
            let mut res = Redirect::to(&format!("{base}/login")).into_response();
            *res.status_mut() = StatusCode::SEE_OTHER;
            res
        }
        _ => (StatusCode::UNAUTHORIZED, "authentication required").into_response(),
    }
}

/// Whether a state-changing request comes from a page of this dashboard's
/// own origin. Where the browser sends `Sec-Fetch-Site` (every current
/// one), it must be `same-origin`; a page's script cannot forge it, and it
/// holds behind a proxy that rewrites `Host`. Otherwise `Origin`, where
/// sent, must name this host (`Host`, or `X-Forwarded-Host` from a proxy).
/// Requests with neither header (scripts, curl) rely on the CSRF token alone.
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        return if site.as_bytes() == b"same-origin" {
            Ok(())
        } else {
            Err("cross-site request refused (Sec-Fetch-Site)")
        };
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
        let named = |name: &str| {
            headers
                .get(name)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| {
                    !origin_host.is_empty() && origin_host.eq_ignore_ascii_case(h.trim())
                })
        };
        if !named("host") && !named("x-forwarded-host") {
            return Err("cross-origin request refused (Origin)");
        }
    }
    Ok(())
}

/// The token login page.
pub(crate) async fn login_page(ctx: Ctx) -> Response {
    if !matches!(ctx.state.auth, AuthMode::Token(_)) {
        return Redirect::to(&ctx.url("")).into_response();
    }
    let body = html! {
        form.login method="post" action=(ctx.url("/login")) {
            label { "Access token " input type="password" name="token" autofocus required; }
            " "
            button type="submit" { "Sign in" }
        }
    };
    pages::layout(&ctx, "Sign in", "login", body).into_response()
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

/// Checks the token and sets the cookie.
pub(crate) async fn login(ctx: Ctx, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let AuthMode::Token(token) = &ctx.state.auth else {
        return Redirect::to(&ctx.url("")).into_response();
    };
    if let Err(e) = same_origin(&headers) {
        return (StatusCode::FORBIDDEN, e).into_response();
    }
    if !same_secret(&form.token, token) {
        return (
            StatusCode::UNAUTHORIZED,
            pages::layout(
                &ctx,
                "Sign in",
                "login",
                html! { p.error { "Wrong token." } a href=(ctx.url("/login")) { "Try again" } },
            ),
        )
            .into_response();
    }
    let mut res = Redirect::to(&ctx.url("")).into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut().insert(
        header::SET_COOKIE,
        token_cookie(&ctx.base, &form.token, None),
    );
    res
}

/// Forgets the token cookie.
pub(crate) async fn logout(ctx: Ctx, headers: HeaderMap) -> Response {
    if let Err(e) = same_origin(&headers) {
        return (StatusCode::FORBIDDEN, e).into_response();
    }
    let mut res = Redirect::to(&ctx.url("/login")).into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut()
        .insert(header::SET_COOKIE, token_cookie(&ctx.base, "", Some(0)));
    res
}
