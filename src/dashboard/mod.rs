//! A web dashboard for a [`Queue`]: overview, jobs, job detail, queues,
//! workers, schedules and the audit log, with actions (requeue, cancel,
//! delete, pause, resume, bulk requeue of a queue's dead jobs), live counts
//! and a Prometheus `/metrics` endpoint. Feature `dashboard`.
//!
//! It is an [`axum::Router`]: serve it on its own (`jobs dashboard --url …`
//! in the CLI) or mount it in your application under a prefix:
//!
//! ```no_run
//! use jobs::dashboard::{axum, Dashboard};
//!
//! # async fn demo(queue: jobs::Queue) -> std::io::Result<()> {
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my app" }))
//!     .nest("/admin/jobs", Dashboard::new(queue).token("s3cret").router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Security: every page is HTML rendered by `maud`, which escapes every
//! value it interpolates (payloads, errors, job types and queue names are
//! shown as text), under a `Content-Security-Policy` that allows only the
//! dashboard's own scripts and styles. Every state-changing request is a
//! `POST` carrying a CSRF token (a random secret of this dashboard) and
//! coming from the same origin (`Origin` / `Sec-Fetch-Site`). Access can be
//! restricted with a token or HTTP basic auth ([`Dashboard::token`],
//! [`Dashboard::basic_auth`]); [`Dashboard::read_only`] hides and refuses
//! every action. Every action is written to the audit log under the actor
//! `dashboard` (`dashboard:USER` with basic auth).

mod actions;
mod assets;
mod auth;
mod chart;
mod live;
mod metrics;
mod pages;
mod util;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::Queue;

use auth::AuthMode;
/// The `axum` the dashboard is built with, to mount its router at the same version.
pub use axum;

/// The actor name actions are audited under (`dashboard:USER` with basic auth).
pub const ACTOR: &str = "dashboard";

/// The dashboard for `queue`, with the defaults: no authentication (serve it
/// on a loopback address only, or behind your own), actions enabled.
pub fn router(queue: Queue) -> Router {
    Dashboard::new(queue).router()
}

/// A dashboard's options; [`router`](Dashboard::router) builds it.
#[derive(Debug, Clone)]
pub struct Dashboard {
    queue: Queue,
    read_only: bool,
    auth: AuthMode,
    base_path: Option<String>,
    title: String,
    poll_seconds: u32,
}

impl Dashboard {
    /// A dashboard over `queue`.
    pub fn new(queue: Queue) -> Self {
        Dashboard {
            queue,
            read_only: false,
            auth: AuthMode::None,
            base_path: None,
            title: "jobs".to_owned(),
            poll_seconds: 2,
        }
    }

    /// Hides every action and refuses their requests (`403`).
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }

    /// Requires this token: as `Authorization: Bearer TOKEN` (for scripts
    /// and Prometheus), or entered once on the login page (or given as
    /// `?token=TOKEN`), after which a `SameSite=Strict`, `HttpOnly` cookie
    /// carries it.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = AuthMode::Token(token.into());
        self
    }

    /// Requires HTTP basic auth as `user` with `password`; actions are then
    /// audited as `dashboard:USER`. Call it again to admit more users.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        let pair = (user.into(), password.into());
        match &mut self.auth {
            AuthMode::Basic(users) => users.push(pair),
            _ => self.auth = AuthMode::Basic(vec![pair]),
        }
        self
    }

    /// Whether a token or basic auth is required.
    pub fn has_auth(&self) -> bool {
        !matches!(self.auth, AuthMode::None)
    }

    /// The path the dashboard is reached under, for its links, when a proxy
    /// strips it before the request reaches axum. Not needed under
    /// `Router::nest`, which the dashboard detects.
    pub fn base_path(mut self, path: impl Into<String>) -> Self {
        let p = path.into();
        self.base_path = Some(p.trim_end_matches('/').to_owned());
        self
    }

    /// The name in the page titles and header (default `jobs`).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// How often the live parts of a page refresh, in seconds (default 2; 0: never).
    pub fn poll_seconds(mut self, seconds: u32) -> Self {
        self.poll_seconds = seconds;
        self
    }

    /// The router: mount it with `Router::nest`, or serve it as it is.
    pub fn router(self) -> Router {
        let state = Arc::new(State {
            queue: self.queue.with_actor(ACTOR),
            read_only: self.read_only,
            auth: self.auth,
            base_path: self.base_path,
            title: self.title,
            poll_seconds: self.poll_seconds,
            csrf_secret: auth::random_secret(),
        });
        Router::new()
            .route("/", get(pages::overview::page))
            .route("/jobs", get(pages::jobs::page))
            .route("/jobs/{id}", get(pages::job::page))
            .route("/jobs/{id}/live", get(pages::job::live))
            .route("/queues", get(pages::queues::page))
            .route("/workers", get(pages::workers::page))
            .route("/schedules", get(pages::schedules::page))
            .route("/audit", get(pages::audit::page))
            .route("/live/overview", get(live::overview))
            .route("/live/running", get(live::running))
            .route("/metrics", get(metrics::metrics))
            .route("/actions/{action}", post(actions::action))
            .route("/login", get(auth::login_page).post(auth::login))
            .route("/logout", post(auth::logout))
            .route("/assets/{file}", get(assets::asset))
            .fallback(pages::not_found)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::guard,
            ))
            .with_state(state)
    }
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct State {
    /// The queue, acting as `dashboard`.
    pub(crate) queue: Queue,
    pub(crate) read_only: bool,
    pub(crate) auth: AuthMode,
    pub(crate) base_path: Option<String>,
    pub(crate) title: String,
    pub(crate) poll_seconds: u32,
    /// The CSRF token of this dashboard: random, made at start.
    pub(crate) csrf_secret: String,
}

pub(crate) type AppState = Arc<State>;
