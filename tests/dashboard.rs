//! The dashboard over HTTP, in process (`tower::ServiceExt::oneshot`), on
//! the memory backend: every page renders with seeded jobs, every action
//! works and lands in the audit log, and CSRF, read-only mode, auth and
//! escaping hold.

mod dashboard_support;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use dashboard_support::{seed, Seeded, XSS_IMG, XSS_QUEUE, XSS_SCRIPT, XSS_TYPE};
use http_body_util::BodyExt as _;
use jobs::dashboard::Dashboard;
use jobs::{AuditFilter, JobStatus, Queue};
use tower::ServiceExt as _;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &Router, path: &str) -> Reply {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

fn form_request(path: &str, fields: &[(&str, &str)]) -> Request<Body> {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", pct(v)))
        .collect::<Vec<_>>()
        .join("&");
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A fresh, seeded queue on each backend this build has: memory, and SQLite
/// (a file of its own) with the `sqlite` feature.
async fn seeded_backends() -> Vec<(Queue, Seeded)> {
    let mut out = Vec::new();
    for url in dashboard_support::backend_urls() {
        let queue = jobs::connect(&url).await.unwrap();
        let seeded = seed(&queue).await;
        out.push((queue, seeded));
    }
    out
}

async fn post_action(app: &Router, action: &str, fields: &[(&str, &str)]) -> Reply {
    let csrf = csrf_of(&get(app, "/queues").await.body);
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    send(app, form_request(&format!("/actions/{action}"), &all)).await
}

async fn last_audit(queue: &Queue) -> jobs::AuditEntry {
    queue
        .audit_log(&AuditFilter::default().limit(1))
        .await
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn every_page_renders_with_seeded_jobs() {
    for (queue, s) in seeded_backends().await {
        every_page_renders_with_seeded_jobs_on(queue, s).await;
    }
}

async fn every_page_renders_with_seeded_jobs_on(queue: Queue, s: Seeded) {
    let app = Dashboard::new(queue.clone()).router();

    let overview = get(&app, "/").await;
    assert_eq!(overview.status, StatusCode::OK);
    for text in [
        "reports",
        "emails",
        "Waiting",
        "Dead",
        "Oldest waiting",
        "Running now",
    ] {
        assert!(overview.body.contains(text), "overview lacks {text}");
    }
    assert!(overview.body.contains("hx-trigger=\"every 2s\""));
    assert!(overview.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));

    let list = get(&app, "/jobs").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains(&s.completed.to_string()));
    let dead = get(&app, "/jobs?queue=emails&status=DEAD_LETTER").await;
    assert_eq!(dead.status, StatusCode::OK);
    for id in &s.dead_emails {
        assert!(dead.body.contains(&id.to_string()));
    }
    assert!(!dead.body.contains(&s.dead_reports[0].to_string()));
    assert!(!dead.body.contains(&s.pending[0].to_string()));
    let by_type = get(&app, "/jobs?type=report.build&status=FAILED").await;
    assert!(by_type.body.contains(&s.failed.to_string()));
    assert!(!by_type.body.contains(&s.completed.to_string()));
    // Paging by offset/limit.
    let page1 = get(&app, "/jobs?limit=2").await;
    assert!(page1.body.contains("rel=\"next\""));
    let page2 = get(&app, "/jobs?limit=2&offset=2").await;
    assert!(page2.body.contains("rel=\"prev\""));
    assert_eq!(
        get(&app, "/jobs?status=bogus").await.status,
        StatusCode::OK,
        "a bad filter is explained, not a crash"
    );

    let job = get(&app, &format!("/jobs/{}", s.dead_reports[0])).await;
    assert_eq!(job.status, StatusCode::OK);
    for text in [
        "DEAD_LETTER",
        "database timeout after 30s",
        "&quot;report&quot;: 100",
        "test-worker-1",
        "Requeue",
        "Delete",
    ] {
        assert!(job.body.contains(text), "job page lacks {text}");
    }
    let done = get(&app, &format!("/jobs/{}", s.completed)).await;
    assert!(done.body.contains("Result") && done.body.contains("&quot;pages&quot;: 12"));
    assert!(done.body.contains("&quot;tenant&quot;: &quot;acme&quot;"));
    assert!(!done.body.contains("data-action=\"requeue\""));
    assert_eq!(
        get(&app, &format!("/jobs/{}", jobs::JobId::new()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, "/jobs/not-an-id").await.status,
        StatusCode::NOT_FOUND
    );

    let queues = get(&app, "/queues").await;
    assert!(queues.body.contains("data-action=\"pause\""));
    assert!(queues.body.contains("data-action=\"requeue-dead\""));
    let workers = get(&app, "/workers").await;
    assert_eq!(workers.status, StatusCode::OK);
    let schedules = get(&app, "/schedules").await;
    assert!(schedules.body.contains("nightly-report") && schedules.body.contains("0 3 * * *"));
    assert_eq!(get(&app, "/audit").await.status, StatusCode::OK);
    let live = get(&app, "/live/overview").await;
    assert!(live.body.starts_with("<div id=\"live-overview\""));
    assert!(get(&app, "/live/running")
        .await
        .body
        .contains("Nothing running"));
    assert_eq!(get(&app, "/nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_are_prometheus_text_from_the_backend() {
    for (queue, s) in seeded_backends().await {
        metrics_are_prometheus_text_from_the_backend_on(queue, s).await;
    }
}

async fn metrics_are_prometheus_text_from_the_backend_on(queue: Queue, _s: Seeded) {
    queue.pause("reports").await.unwrap();
    let app = Dashboard::new(queue).router();
    let m = get(&app, "/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    for line in [
        "# TYPE jobs_queue_jobs gauge",
        "jobs_queue_jobs{queue=\"emails\",status=\"dead_letter\"} 3",
        "jobs_queue_jobs{queue=\"emails\",status=\"pending\"} 3",
        "jobs_queue_jobs{queue=\"reports\",status=\"completed\"} 3",
        "jobs_queue_paused{queue=\"reports\"} 1",
        "jobs_queue_paused{queue=\"emails\"} 0",
        "jobs_workers 0",
        // A label value is escaped.
        "jobs_queue_jobs{queue=\"\\\"><img/src=x/onerror=alert(1)>\",status=\"dead_letter\"} 1",
    ] {
        assert!(
            m.body.lines().any(|l| l == line),
            "no line {line} in\n{}",
            m.body
        );
    }
    assert!(m
        .body
        .lines()
        .any(|l| l.starts_with("jobs_queue_oldest_waiting_seconds{queue=\"emails\"} ")));
}

#[tokio::test]
async fn the_vendored_htmx_is_the_pinned_one() {
    use sha2::Digest as _;
    let queue = jobs::connect("memory://").await.unwrap();
    let app = Dashboard::new(queue).router();
    let res = app
        .oneshot(
            Request::get("/assets/htmx.min.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let sums = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/dashboard/assets/SHA256SUMS"
    ))
    .unwrap();
    let pinned = sums
        .lines()
        .find(|l| l.ends_with(" htmx.min.js"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let digest = sha2::Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, pinned);
}

#[tokio::test]
async fn each_action_works_and_lands_in_the_audit_log() {
    for (queue, s) in seeded_backends().await {
        each_action_works_and_lands_in_the_audit_log_on(queue, s).await;
    }
}

async fn each_action_works_and_lands_in_the_audit_log_on(queue: Queue, s: Seeded) {
    let app = Dashboard::new(queue.clone()).router();

    // Requeue a dead job, coming back to its page with a notice.
    let dead = s.dead_reports[0];
    let back = format!("/jobs/{dead}");
    let r = post_action(
        &app,
        "requeue",
        &[("id", &dead.to_string()), ("return_to", &back)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r
        .location()
        .starts_with(&format!("/jobs/{dead}?notice=Requeued")));
    assert_eq!(
        queue.get(dead).await.unwrap().unwrap().status,
        JobStatus::Pending
    );
    let e = last_audit(&queue).await;
    assert_eq!(
        (e.actor.as_str(), e.action.as_str(), e.ok),
        ("dashboard", "requeue", true)
    );
    assert_eq!(e.target, dead.to_string());
    let shown = get(&app, r.location()).await;
    assert!(shown.body.contains("class=\"notice\""));

    // A refused action is reported back too, and audited as failed.
    let r = post_action(&app, "requeue", &[("id", &s.completed.to_string())]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.location().contains("error=Could%20not%20requeue"),
        "{}",
        r.location()
    );
    assert!(!last_audit(&queue).await.ok);

    // Cancel a waiting job.
    let pending = s.pending[0];
    let r = post_action(&app, "cancel", &[("id", &pending.to_string())]).await;
    assert!(
        r.location().contains("notice=Cancelled"),
        "{}",
        r.location()
    );
    let job = queue.get(pending).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.cancelled_at.is_some());
    assert_eq!(job.error_message.as_deref(), Some("cancelled by dashboard"));
    assert_eq!(last_audit(&queue).await.action, "cancel");

    // Delete a job from its page: back to the list, as it has no page now.
    let failed = s.failed;
    let r = post_action(
        &app,
        "delete",
        &[
            ("id", &failed.to_string()),
            ("return_to", &format!("/jobs/{failed}")),
        ],
    )
    .await;
    assert!(
        r.location().starts_with("/jobs?notice=Deleted"),
        "{}",
        r.location()
    );
    assert!(queue.get(failed).await.unwrap().is_none());
    assert_eq!(last_audit(&queue).await.action, "delete");

    // Pause and resume a queue whose name needs escaping everywhere.
    let r = post_action(&app, "pause", &[("queue", XSS_QUEUE)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(queue.paused().await.unwrap(), vec![XSS_QUEUE.to_owned()]);
    let e = last_audit(&queue).await;
    assert_eq!((e.action.as_str(), e.target.as_str()), ("pause", XSS_QUEUE));
    let queues = get(&app, "/queues").await;
    assert!(queues.body.contains("data-action=\"resume\""));
    post_action(&app, "resume", &[("queue", XSS_QUEUE)]).await;
    assert!(queue.paused().await.unwrap().is_empty());
    assert_eq!(last_audit(&queue).await.action, "resume");

    // Requeue every dead job of a queue.
    let r = post_action(&app, "requeue-dead", &[("queue", "emails")]).await;
    assert!(
        r.location().contains("notice=Requeued%203%20dead"),
        "{}",
        r.location()
    );
    for id in &s.dead_emails {
        assert_eq!(
            queue.get(*id).await.unwrap().unwrap().status,
            JobStatus::Pending
        );
    }
    // Untouched: another queue's dead job.
    assert_eq!(
        queue.get(s.dead_reports[1]).await.unwrap().unwrap().status,
        JobStatus::DeadLetter
    );
    // One audit entry for the whole bulk requeue, with the count.
    let log = queue
        .audit_log(&AuditFilter::default().limit(2))
        .await
        .unwrap();
    assert_eq!(
        (log[0].action.as_str(), log[0].actor.as_str(), log[0].ok),
        ("requeue-many", "dashboard", true)
    );
    assert_eq!(
        log[0].target,
        "DEAD_LETTER jobs of queue emails (at most 100000)"
    );
    assert_eq!(log[0].detail, "3 jobs requeued");
    assert_eq!(log[1].action, "resume", "no entry per job");
    let audit = get(&app, "/audit").await;
    assert!(
        audit.body.contains("requeue-many")
            && audit.body.contains("DEAD_LETTER jobs of queue emails")
    );

    // Narrowed to a job type: nothing of that type is dead in `reports`.
    let r = post_action(
        &app,
        "requeue-dead",
        &[("queue", "reports"), ("type", "email.send")],
    )
    .await;
    assert!(
        r.location().contains(
            "notice=Requeued%200%20dead%20jobs%20of%20queue%20reports%2C%20type%20email.send"
        ),
        "{}",
        r.location()
    );
    assert_eq!(
        queue.get(s.dead_reports[1]).await.unwrap().unwrap().status,
        JobStatus::DeadLetter
    );
    let list = get(
        &app,
        "/jobs?queue=reports&status=DEAD_LETTER&type=report.build",
    )
    .await;
    assert!(list
        .body
        .contains("Requeue every dead job matching this filter"));

    // An unknown action, or one without its argument.
    assert_eq!(
        post_action(&app, "explode", &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post_action(&app, "requeue", &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    // `return_to` cannot send the browser elsewhere.
    let r = post_action(
        &app,
        "resume",
        &[("queue", "emails"), ("return_to", "//evil.example/x")],
    )
    .await;
    assert!(r.location().starts_with("/?notice="), "{}", r.location());
}

/// The overview's chart comes from the backend's throughput history: a
/// dashboard opened just now shows the seeded jobs' outcomes at once.
#[tokio::test]
async fn the_overview_charts_the_backends_throughput_at_once() {
    for (queue, _s) in seeded_backends().await {
        let app = Dashboard::new(queue.clone()).router();
        let overview = get(&app, "/").await;
        assert_eq!(overview.status, StatusCode::OK);
        // 3 reports completed; 1 failed; 2 reports, 3 emails and 1 more dead.
        assert!(
            overview
                .body
                .contains("data-completed=\"3\" data-failed=\"7\" data-retried=\"0\""),
            "{}",
            overview.body
        );
        assert!(overview.body.contains("3 completed, 7 failed or dead"));
        assert!(overview.body.contains("failure rate 70.0%"));
        assert!(
            overview.body.contains("fill=\"#12b76a\""),
            "a completed bar"
        );
        // The poll of the live part draws the same.
        let live = get(&app, "/live/overview").await;
        assert!(live.body.contains("3 completed, 7 failed or dead"));
        // The last full minute's figures on /metrics are the backend's too
        // (the seed may straddle a minute: only their form is checked).
        let metrics = get(&app, "/metrics").await;
        assert!(metrics
            .body
            .contains("# TYPE jobs_queue_finished_last_minute gauge"));
    }
}

#[tokio::test]
async fn actions_without_the_csrf_token_or_from_another_site_are_refused() {
    for (queue, s) in seeded_backends().await {
        actions_without_the_csrf_token_or_from_another_site_are_refused_on(queue, s).await;
    }
}

async fn actions_without_the_csrf_token_or_from_another_site_are_refused_on(
    queue: Queue,
    s: Seeded,
) {
    let app = Dashboard::new(queue.clone()).router();
    let id = s.dead_reports[0].to_string();
    let audited = queue
        .audit_log(&AuditFilter::default())
        .await
        .unwrap()
        .len();

    // No token, a wrong one.
    let r = send(&app, form_request("/actions/requeue", &[("id", &id)])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("CSRF"));
    let r = send(
        &app,
        form_request("/actions/requeue", &[("id", &id), ("csrf", "0000")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Another dashboard's token.
    let other = Dashboard::new(queue.clone()).router();
    let foreign = csrf_of(&get(&other, "/queues").await.body);
    let mine = csrf_of(&get(&app, "/queues").await.body);
    assert_ne!(foreign, mine, "each dashboard has its own secret");
    let r = send(
        &app,
        form_request("/actions/requeue", &[("id", &id), ("csrf", &foreign)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The right token, from another site.
    let mut req = form_request("/actions/requeue", &[("id", &id), ("csrf", &mine)]);
    req.headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::FORBIDDEN);
    let mut req = form_request("/actions/requeue", &[("id", &id), ("csrf", &mine)]);
    req.headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    req.headers_mut()
        .insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::FORBIDDEN);
    let mut req = form_request("/actions/requeue", &[("id", &id), ("csrf", &mine)]);
    req.headers_mut()
        .insert(header::ORIGIN, "null".parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::FORBIDDEN);
    // A GET does nothing.
    assert_eq!(
        get(&app, &format!("/actions/requeue?id={id}&csrf={mine}"))
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );

    assert_eq!(
        queue.get(s.dead_reports[0]).await.unwrap().unwrap().status,
        JobStatus::DeadLetter
    );
    assert_eq!(
        queue
            .audit_log(&AuditFilter::default())
            .await
            .unwrap()
            .len(),
        audited
    );

    // Same origin, as a browser sends it: accepted.
    let mut req = form_request("/actions/requeue", &[("id", &id), ("csrf", &mine)]);
    req.headers_mut()
        .insert("sec-fetch-site", "same-origin".parse().unwrap());
    req.headers_mut()
        .insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
    req.headers_mut()
        .insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        queue.get(s.dead_reports[0]).await.unwrap().unwrap().status,
        JobStatus::Pending
    );
    // Behind a proxy that rewrites `Host`: `Sec-Fetch-Site`, or `Origin`
    // against `X-Forwarded-Host`.
    let id = s.dead_reports[1].to_string();
    let mut req = form_request("/actions/requeue", &[("id", &id), ("csrf", &mine)]);
    req.headers_mut()
        .insert(header::ORIGIN, "https://jobs.example.com".parse().unwrap());
    req.headers_mut()
        .insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
    req.headers_mut()
        .insert("x-forwarded-host", "jobs.example.com".parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn read_only_hides_and_refuses_actions() {
    for (queue, s) in seeded_backends().await {
        read_only_hides_and_refuses_actions_on(queue, s).await;
    }
}

async fn read_only_hides_and_refuses_actions_on(queue: Queue, s: Seeded) {
    let writable = Dashboard::new(queue.clone()).router();
    let csrf = csrf_of(&get(&writable, "/queues").await.body);
    let app = Dashboard::new(queue.clone()).read_only(true).router();
    for path in [
        "/".to_owned(),
        "/queues".to_owned(),
        "/jobs?queue=emails&status=DEAD_LETTER".to_owned(),
        format!("/jobs/{}", s.dead_reports[0]),
        format!("/jobs/{}", s.pending[0]),
    ] {
        let page = get(&app, &path).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("/actions/"), "{path} shows an action");
        assert!(page.body.contains("read-only"));
    }
    let id = s.dead_reports[0].to_string();
    let r = send(
        &app,
        form_request("/actions/requeue", &[("id", &id), ("csrf", &csrf)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        form_request("/actions/pause", &[("queue", "emails"), ("csrf", &csrf)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(queue.paused().await.unwrap().is_empty());
    assert_eq!(
        queue.get(s.dead_reports[0]).await.unwrap().unwrap().status,
        JobStatus::DeadLetter
    );
}

#[tokio::test]
async fn a_token_is_required_when_set() {
    for (queue, s) in seeded_backends().await {
        a_token_is_required_when_set_on(queue, s).await;
    }
}

async fn a_token_is_required_when_set_on(queue: Queue, s: Seeded) {
    let app = Dashboard::new(queue.clone()).token("s3cret-token").router();

    // Pages send the browser to the login page; fragments and metrics say 401.
    let r = get(&app, "/").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login");
    assert_eq!(get(&app, "/metrics").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&app, "/live/overview").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(get(&app, "/login").await.body.contains("name=\"token\""));
    assert_eq!(
        get(&app, "/assets/dashboard.css").await.status,
        StatusCode::OK
    );
    let r = send(
        &app,
        form_request("/actions/pause", &[("queue", "emails"), ("csrf", "x")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A wrong token, in every place.
    let bad = send(
        &app,
        Request::get("/metrics")
            .header(header::AUTHORIZATION, "Bearer wrong")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(&app, form_request("/login", &[("token", "wrong")]))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get(&app, "/?token=wrong").await.location(), "/login");

    // The bearer header (Prometheus, scripts).
    let ok = send(
        &app,
        Request::get("/metrics")
            .header(header::AUTHORIZATION, "Bearer s3cret-token")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);

    // The login form sets a strict cookie, which admits.
    let r = send(&app, form_request("/login", &[("token", "s3cret-token")])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap().to_owned();
    let page = send(
        &app,
        Request::get(format!("/jobs/{}", s.dead_emails[0]))
            .header(header::COOKIE, &pair)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    // An action with the cookie and the CSRF token.
    let csrf = csrf_of(&page.body);
    let mut req = form_request(
        "/actions/requeue",
        &[("id", &s.dead_emails[0].to_string()), ("csrf", &csrf)],
    );
    req.headers_mut()
        .insert(header::COOKIE, pair.parse().unwrap());
    assert_eq!(send(&app, req).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        queue.get(s.dead_emails[0]).await.unwrap().unwrap().status,
        JobStatus::Pending
    );

    // `?token=` signs in and leaves the address.
    let r = get(&app, "/queues?token=s3cret-token").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/queues");
    assert!(r.headers.contains_key(header::SET_COOKIE));
}

#[tokio::test]
async fn basic_auth_admits_its_users_and_audits_them_by_name() {
    for (queue, s) in seeded_backends().await {
        basic_auth_admits_its_users_and_audits_them_by_name_on(queue, s).await;
    }
}

async fn basic_auth_admits_its_users_and_audits_them_by_name_on(queue: Queue, s: Seeded) {
    let app = Dashboard::new(queue.clone())
        .basic_auth("alice", "correct horse")
        .basic_auth("bob", "battery staple")
        .router();
    let r = get(&app, "/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let with = |path: &str, user: &str, pass: &str| {
        use base64::Engine as _;
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        Request::get(path)
            .header(header::AUTHORIZATION, format!("Basic {creds}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        send(&app, with("/", "alice", "wrong")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, with("/", "mallory", "correct horse"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let page = send(&app, with("/queues", "bob", "battery staple")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("signed in as bob"));

    let csrf = csrf_of(&page.body);
    let mut req = form_request(
        "/actions/cancel",
        &[("id", &s.pending[1].to_string()), ("csrf", &csrf)],
    );
    let auth = with("/", "alice", "correct horse").headers()[header::AUTHORIZATION].clone();
    req.headers_mut().insert(header::AUTHORIZATION, auth);
    assert_eq!(send(&app, req).await.status, StatusCode::SEE_OTHER);
    let e = last_audit(&queue).await;
    assert_eq!(
        (e.actor.as_str(), e.action.as_str()),
        ("dashboard:alice", "cancel")
    );
    let job = queue.get(s.pending[1]).await.unwrap().unwrap();
    assert_eq!(
        job.error_message.as_deref(),
        Some("cancelled by dashboard:alice")
    );
}

/// No user value reaches the page as markup: not in text, not in attributes.
fn assert_inert(html: &str, page: &str) {
    for raw in [
        "<script>alert(1)</script>",
        "<img src=x",
        "<img/src=x",
        "\"><img",
    ] {
        assert!(!html.contains(raw), "{page} holds {raw:?} unescaped");
    }
}

#[tokio::test]
async fn user_values_are_escaped_everywhere() {
    for (queue, s) in seeded_backends().await {
        user_values_are_escaped_everywhere_on(queue, s).await;
    }
}

async fn user_values_are_escaped_everywhere_on(queue: Queue, s: Seeded) {
    let app = Dashboard::new(queue.clone()).router();
    let job = get(&app, &format!("/jobs/{}", s.xss)).await;
    assert_eq!(job.status, StatusCode::OK);
    assert_inert(&job.body, "the job page");
    // Shown, as text: the payload, the error, the type, the queue, metadata.
    assert!(job.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(job
        .body
        .contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(job
        .body
        .contains("&quot;&gt;&lt;img/src=x/onerror=alert(1)&gt;"));
    let pages = [
        "/".to_owned(),
        "/jobs".to_owned(),
        format!("/jobs?queue={}", pct(XSS_QUEUE)),
        format!("/jobs?type={}", pct(XSS_TYPE)),
        format!("/jobs?queue={}&status=DEAD_LETTER", pct(XSS_QUEUE)),
        "/queues".to_owned(),
        "/live/overview".to_owned(),
        format!("/jobs/{}?notice={}", s.xss, pct(XSS_IMG)),
        format!("/jobs?status={}", pct(XSS_SCRIPT)),
    ];
    for path in &pages {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_inert(&r.body, path);
    }
    let filtered = get(&app, &format!("/jobs?queue={}", pct(XSS_QUEUE))).await;
    assert!(
        filtered.body.contains(&s.xss.to_string()),
        "the filter by that queue works"
    );
    // The audit log shows an action on that queue as text too.
    post_action(&app, "pause", &[("queue", XSS_QUEUE)]).await;
    let audit = get(&app, "/audit").await;
    assert_inert(&audit.body, "/audit");
    assert!(audit
        .body
        .contains("&quot;&gt;&lt;img/src=x/onerror=alert(1)&gt;"));
}

#[tokio::test]
async fn mounted_under_a_prefix_it_links_and_redirects_there() {
    for (queue, s) in seeded_backends().await {
        mounted_under_a_prefix_it_links_and_redirects_there_on(queue, s).await;
    }
}

async fn mounted_under_a_prefix_it_links_and_redirects_there_on(queue: Queue, s: Seeded) {
    let app = Router::new().nest("/admin/jobs", Dashboard::new(queue.clone()).router());
    let page = get(&app, "/admin/jobs").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("href=\"/admin/jobs/jobs\""));
    assert!(page.body.contains("src=\"/admin/jobs/assets/htmx.min.js"));
    assert!(page.body.contains("hx-get=\"/admin/jobs/live/overview\""));
    let job = get(&app, &format!("/admin/jobs/jobs/{}", s.dead_reports[0])).await;
    assert_eq!(job.status, StatusCode::OK);
    assert!(job.body.contains("action=\"/admin/jobs/actions/requeue\""));
    let csrf = csrf_of(&job.body);
    let r = send(
        &app,
        form_request(
            "/admin/jobs/actions/requeue",
            &[
                ("id", &s.dead_reports[0].to_string()),
                ("csrf", &csrf),
                ("return_to", &format!("/jobs/{}", s.dead_reports[0])),
            ],
        ),
    )
    .await;
    assert!(
        r.location()
            .starts_with(&format!("/admin/jobs/jobs/{}?notice=", s.dead_reports[0])),
        "{}",
        r.location()
    );
    assert_eq!(
        get(&app, "/admin/jobs/assets/htmx.min.js").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn cancelling_a_running_job_tells_its_worker() {
    for url in dashboard_support::backend_urls() {
        let queue = jobs::connect(&url).await.unwrap();
        let manager = dashboard_support::builder(&queue, &["reports".into()])
            .cancel_grace(std::time::Duration::from_millis(200))
            .shutdown_timeout(std::time::Duration::from_millis(200))
            .build()
            .unwrap();
        let id = queue
            .enqueue_raw(
                "report.build",
                serde_json::json!({ "outcome": "sleep", "ms": 30_000 }),
            )
            .queue("reports")
            .await
            .unwrap()
            .id();
        manager.start().await.unwrap();
        let start = std::time::Instant::now();
        while queue.get(id).await.unwrap().unwrap().status != JobStatus::Running {
            assert!(start.elapsed().as_secs() < 20, "the job never ran");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let app = Dashboard::new(queue.clone()).router();
        let live = get(&app, "/live/running").await;
        assert!(live.body.contains(&id.to_string()[24..]), "{}", live.body);
        let page = get(&app, &format!("/jobs/{id}")).await;
        assert!(page.body.contains("data-action=\"cancel\""));
        assert!(
            page.body.contains(&format!("hx-get=\"/jobs/{id}/live\"")),
            "a running job's page follows it"
        );
        let part = get(&app, &format!("/jobs/{id}/live")).await;
        assert!(part.body.starts_with("<div id=\"job-live\""));
        assert!(part.body.contains("RUNNING") && part.body.contains("hx-trigger"));
        // Its actions come back to the page, not to the fragment.
        assert!(part
            .body
            .contains(&format!("name=\"return_to\" value=\"/jobs/{id}\"")));
        assert!(
            !page.body.contains("data-action=\"delete\""),
            "a running job is not deleted"
        );
        let r = post_action(
            &app,
            "cancel",
            &[("id", &id.to_string()), ("reason", "wrong customer")],
        )
        .await;
        assert!(
            r.location().contains("notice=Cancelling") || r.location().contains("notice=Cancelled"),
            "{}",
            r.location()
        );
        let e = last_audit(&queue).await;
        assert_eq!((e.action.as_str(), e.ok), ("cancel", true));
        let start = std::time::Instant::now();
        let job = loop {
            let job = queue.get(id).await.unwrap().unwrap();
            if job.status == JobStatus::Failed {
                break job;
            }
            assert!(start.elapsed().as_secs() < 20, "the job was not stopped");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(job.cancelled_at.is_some());
        assert_eq!(
            job.error_message.as_deref(),
            Some("cancelled by dashboard: wrong customer")
        );
        let page = get(&app, &format!("/jobs/{id}")).await;
        assert!(page.body.contains("id=\"cancelled\""));
        let part = get(&app, &format!("/jobs/{id}/live")).await;
        assert!(
            part.body.contains("FAILED") && !part.body.contains("hx-trigger"),
            "a finished job's page stops polling"
        );
        manager.stop().await.unwrap();
    }
}

/// `jobs dashboard` serves on a loopback address, and refuses another one
/// without authentication.
#[cfg(feature = "cli")]
#[test]
fn the_cli_serves_loopback_and_refuses_a_public_bind_without_auth() {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    let exe = env!("CARGO_BIN_EXE_jobs");
    let out = Command::new(exe)
        .args(["--url", "memory://", "dashboard", "--bind", "0.0.0.0:0"])
        .env_remove("JOBS_DASHBOARD_TOKEN")
        .env_remove("JOBS_DASHBOARD_BASIC_AUTH")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without authentication"), "{err}");

    let mut child = Command::new(exe)
        .args([
            "--url",
            "memory://",
            "dashboard",
            "--bind",
            "127.0.0.1:0",
            "--read-only",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("dashboard on http://127.0.0.1:"), "{line}");
}

/// What one poll of the overview costs with many jobs stored (run by hand:
/// `JOBS_POLL_JOBS=100000 cargo test -F dashboard,sqlite --test dashboard
/// -- --ignored --nocapture poll_cost`). It prints the figures.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn poll_cost_with_many_jobs() {
    let n: usize = std::env::var("JOBS_POLL_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    for url in dashboard_support::backend_urls() {
        let queue = jobs::connect(&url).await.unwrap();
        let start = std::time::Instant::now();
        for chunk in 0..n.div_ceil(1000) {
            let jobs = (0..1000.min(n - chunk * 1000))
                .map(|i| {
                    jobs::NewJob::new("report.build", serde_json::json!({ "i": chunk * 1000 + i }))
                        .queue(["reports", "emails", "exports"][i % 3])
                })
                .collect();
            queue.enqueue_many(jobs).await.unwrap();
        }
        let seeded = start.elapsed();
        let app = Dashboard::new(queue.clone()).router();
        let mut times = Vec::new();
        for _ in 0..20 {
            let t = std::time::Instant::now();
            assert_eq!(get(&app, "/live/overview").await.status, StatusCode::OK);
            times.push(t.elapsed());
        }
        times.sort();
        let t = std::time::Instant::now();
        queue.counts().await.unwrap();
        let counts = t.elapsed();
        println!(
            "{}: {n} jobs (seeded in {seeded:.1?}): a poll of the overview takes {:.1?} (median of 20; max {:.1?}), counts() alone {counts:.1?}",
            url.split("://").next().unwrap(),
            times[10],
            times[19]
        );
    }
}

/// The ids of the jobs a list page shows, in order.
fn listed(html: &str) -> Vec<String> {
    html.split("data-job=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// The `href` of the link with `rel`, unescaped.
fn link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\" href=\""))?;
    let rest = &html[at + rel.len() + 13..];
    Some(rest[..rest.find('"').unwrap()].replace("&amp;", "&"))
}

#[tokio::test]
async fn the_jobs_list_searches_sorts_and_pages_by_cursor() {
    for (queue, s) in seeded_backends().await {
        the_jobs_list_searches_sorts_and_pages_by_cursor_on(queue, s).await;
    }
}

async fn the_jobs_list_searches_sorts_and_pages_by_cursor_on(queue: Queue, s: Seeded) {
    let app = Dashboard::new(queue.clone()).router();
    let id = |j: &jobs::JobId| j.to_string();

    // Search: payload and error text, any case; the box keeps the term.
    let busy = get(&app, "/jobs?q=MAILBOX%20Busy").await;
    assert_eq!(busy.status, StatusCode::OK);
    assert_eq!(
        listed(&busy.body)
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        s.dead_emails.iter().map(id).collect()
    );
    assert!(busy.body.contains("value=\"MAILBOX Busy\""));
    let one = get(&app, "/jobs?q=later1%40EXAMPLE").await;
    assert_eq!(listed(&one.body), vec![id(&s.pending[1])]);
    // Combined with queue and status.
    let timeouts = get(&app, "/jobs?q=timeout&queue=reports&status=DEAD_LETTER").await;
    assert_eq!(listed(&timeouts.body).len(), s.dead_reports.len());
    assert!(!timeouts.body.contains(&id(&s.failed)));

    // Orders: newest first by default, oldest first, due soonest (waiting only).
    let pos = |html: &str, j: &jobs::JobId| listed(html).iter().position(|x| *x == id(j));
    let newest = get(&app, "/jobs").await.body;
    assert!(pos(&newest, &s.scheduled) < pos(&newest, &s.completed));
    let oldest = get(&app, "/jobs?sort=oldest").await.body;
    assert!(pos(&oldest, &s.completed) < pos(&oldest, &s.scheduled));
    let due = get(&app, "/jobs?sort=due").await.body;
    assert!(pos(&due, &s.pending[0]).unwrap() < pos(&due, &s.scheduled).unwrap());
    assert_eq!(pos(&due, &s.completed), None, "finished jobs are not due");
    let finished = get(&app, "/jobs?sort=finished").await.body;
    assert!(pos(&finished, &s.completed).is_some());
    assert_eq!(pos(&finished, &s.pending[0]), None);

    // Paging by cursor, two at a time: every job once, filters kept in the links.
    let total = queue
        .list_all(&jobs::JobFilter::default())
        .await
        .unwrap()
        .len();
    let mut url = "/jobs?limit=2&sort=oldest".to_owned();
    let mut seen = Vec::new();
    for _ in 0..100 {
        let page = get(&app, &url).await;
        assert_eq!(page.status, StatusCode::OK);
        seen.extend(listed(&page.body));
        match link(&page.body, "next") {
            Some(next) => {
                assert!(
                    next.contains("sort=oldest") && next.contains("limit=2"),
                    "{next}"
                );
                assert!(link(&page.body, "next").is_some());
                url = next;
                let deeper = get(&app, &url).await;
                assert!(
                    link(&deeper.body, "first").is_some(),
                    "a way back to the start"
                );
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), total);
    assert_eq!(
        seen.iter().collect::<std::collections::BTreeSet<_>>().len(),
        total,
        "no job twice"
    );

    // Bad input: a clear error, not a crash.
    let bad = get(&app, "/jobs?after=o12x").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("malformed cursor"), "{}", bad.body);
    let wrong = get(&app, "/jobs?sort=oldest&after=n5").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let sideways = get(&app, "/jobs?sort=sideways").await;
    assert_eq!(sideways.status, StatusCode::BAD_REQUEST);
    assert!(sideways.body.contains("unknown sort order"));
    // A search term that is markup shows as text.
    let xss = get(&app, &format!("/jobs?q={}", pct(XSS_SCRIPT))).await;
    assert_inert(&xss.body, "jobs search");
    assert!(listed(&xss.body).contains(&id(&s.xss)));
}
