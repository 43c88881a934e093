//! The dashboard in a real browser: Debian's headless Chromium driven
//! through WebDriver (`chromedriver`, started here on a free port) with
//! `fantoccini`, against a dashboard served on 127.0.0.1:0 over a seeded
//! SQLite database (memory without the `sqlite` feature; any backend with
//! `JOBS_TEST_DASHBOARD_URL`).
//!
//! Opens the overview and sees it refresh by itself, filters the list,
//! opens a dead job, requeues it (answering the confirmation) and sees its
//! status change, pauses a queue and sees a manager stop claiming from it
//! (then resumes it), and checks that the XSS payloads are inert: no alert,
//! the text shown. With `JOBS_SCREENSHOTS=1` it saves screenshots of the
//! main pages to `docs/screenshots/`.
//!
//! Without Chromium or chromedriver it is skipped with a reason, unless `CI`
//! is set: there it must run (`.ci/run` installs them).

mod dashboard_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dashboard_support::{builder, seed, XSS_IMG, XSS_QUEUE, XSS_SCRIPT};
use fantoccini::{Client, ClientBuilder, Locator};
use jobs::{JobStatus, Queue};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The browser's executables, or why the test cannot run.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.into()));
    let driver =
        PathBuf::from(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into()));
    for p in [&chromium, &driver] {
        if !p.exists() {
            return Err(format!(
                "{} is missing (apt-get install chromium chromium-driver)",
                p.display()
            ));
        }
    }
    Ok((chromium, driver))
}

/// chromedriver and the browser's profile, ended and removed on drop.
struct Driver {
    child: Child,
    profile: PathBuf,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver(driver: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = std::env::temp_dir().join(format!(
        "jobs-dashboard-chromium-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&profile).unwrap();
    let d = Driver {
        child,
        profile,
        url: format!("http://127.0.0.1:{port}"),
    };
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d
}

async fn connect(driver: &Driver, chromium: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                format!("--user-data-dir={}", driver.profile.display()),
            ],
        }),
    );
    // Confirmation dialogs are answered by the test itself.
    caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in Chromium")
}

/// Waits for `check` to hold, up to 15 s.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The text of an open alert or confirm, if one is open.
async fn open_dialog(c: &Client) -> Option<String> {
    match c.get_alert_text().await {
        Ok(t) => Some(t),
        Err(e) if e.is_no_such_alert() => None,
        Err(e) => panic!("asking for a dialog: {e}"),
    }
}

async fn shot(c: &Client, name: &str) {
    if std::env::var("JOBS_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn status(queue: &Queue, id: jobs::JobId) -> JobStatus {
    queue.get(id).await.unwrap().unwrap().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_chromium() {
    let (chromium, driver_exe) = match browser() {
        Ok(b) => b,
        Err(why) if std::env::var_os("CI").is_none() => {
            println!("skipped: {why}; CI must run it");
            return;
        }
        Err(why) => panic!("{why}"),
    };

    // SQLite when the build has it (the "seeded SQLite database"), else memory.
    let url = dashboard_support::backend_urls().pop().unwrap();
    let queue = jobs::connect(&url).await.unwrap();
    let s = seed(&queue).await;

    // The dashboard, on a real listener.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = jobs::dashboard::Dashboard::new(queue.clone()).router();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // A manager working the queues, with a long job running in `reports`.
    let manager = builder(&queue, &["emails".into(), "reports".into()])
        .shutdown_timeout(Duration::from_millis(500))
        .cancel_grace(Duration::from_millis(200))
        .build()
        .unwrap();
    let long = queue
        .enqueue_raw("report.build", json!({ "outcome": "sleep", "ms": 60_000 }))
        .queue("reports")
        .await
        .unwrap()
        .id();
    manager.start().await.unwrap();
    dashboard_support_wait(&queue, long, JobStatus::Running).await;
    // The seeded waiting emails are worked off at once.
    for id in &s.pending {
        dashboard_support_wait(&queue, *id, JobStatus::Completed).await;
    }

    let driver = start_driver(&driver_exe).await;
    let c = connect(&driver, &chromium).await;

    // -- The overview, refreshing by itself.
    c.goto(&format!("{base}/")).await.unwrap();
    until("the overview", || async {
        text_of(&c, "#queues-table").await.contains("reports")
    })
    .await;
    assert!(text_of(&c, "#live-running").await.contains("report.build"));
    let waiting = text_of(&c, "[data-total=PENDING] .n").await;
    assert_eq!(waiting, "0");
    // Pause `emails` from behind the page's back and add work: the counts
    // and the paused mark change without a reload.
    queue.pause("emails").await.unwrap();
    for i in 0..4 {
        queue
            .enqueue_raw(
                "email.send",
                json!({ "outcome": "ok", "to": format!("n{i}@example.com") }),
            )
            .queue("emails")
            .await
            .unwrap();
    }
    until("the live counts", || async {
        text_of(&c, "[data-total=PENDING] .n").await == "4"
    })
    .await;
    until("the live paused mark", || async {
        text_of(&c, "tr[data-queue=emails]")
            .await
            .contains("paused")
    })
    .await;
    shot(&c, "overview").await;
    queue.resume("emails").await.unwrap();

    // -- Filter the list.
    c.goto(&format!("{base}/jobs")).await.unwrap();
    let form = c.find(Locator::Css("#filters")).await.unwrap();
    form.find(Locator::Css("select[name=queue]"))
        .await
        .unwrap()
        .select_by_value("emails")
        .await
        .unwrap();
    form.find(Locator::Css("select[name=status]"))
        .await
        .unwrap()
        .select_by_value("DEAD_LETTER")
        .await
        .unwrap();
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the filtered list", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.query().is_some_and(|q| q.contains("status=DEAD_LETTER")))
    })
    .await;
    let rows = c
        .find_all(Locator::Css("#jobs-table tbody tr[data-job]"))
        .await
        .unwrap();
    assert_eq!(rows.len(), s.dead_emails.len());
    shot(&c, "jobs").await;

    // -- Type in the search box: the list narrows as one types (htmx), and
    // the URL follows, so the narrowed list is a link.
    c.find(Locator::Css("#search"))
        .await
        .unwrap()
        .send_keys("USER1@EXAMPLE")
        .await
        .unwrap();
    until("the list to narrow", || async {
        c.find_all(Locator::Css("#jobs-table tbody tr[data-job]"))
            .await
            .is_ok_and(|rows| rows.len() == 1)
    })
    .await;
    let row = c
        .find(Locator::Css("#jobs-table tbody tr[data-job]"))
        .await
        .unwrap();
    assert_eq!(
        row.attr("data-job").await.unwrap(),
        Some(s.dead_emails[1].to_string())
    );
    until("the URL to follow the search", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.query().is_some_and(|q| q.contains("q=USER1")))
    })
    .await;
    c.goto(&format!("{base}/jobs?queue=emails&status=DEAD_LETTER"))
        .await
        .unwrap();
    until("the filtered list again", || async {
        c.find_all(Locator::Css("#jobs-table tbody tr[data-job]"))
            .await
            .is_ok_and(|rows| rows.len() == s.dead_emails.len())
    })
    .await;

    // -- Open a dead job, requeue it, see its status change.
    let dead = s.dead_emails[0];
    c.find(Locator::Css(&format!("tr[data-job='{dead}'] a")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the job page", || async {
        text_of(&c, "#job-status").await.contains("DEAD_LETTER")
    })
    .await;
    assert!(text_of(&c, "#error-message")
        .await
        .contains("SMTP 451: mailbox busy"));
    shot(&c, "job").await;
    // Declining the confirmation does nothing.
    c.find(Locator::Css("button[data-action=requeue]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let asked = open_dialog(&c).await.expect("a confirmation");
    assert!(asked.contains("Requeue job"), "{asked}");
    c.dismiss_alert().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(&queue, dead).await, JobStatus::DeadLetter);
    // Accepting it requeues; the manager then runs the job again (and it
    // fails again: its payload says so).
    c.find(Locator::Css("button[data-action=requeue]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(open_dialog(&c).await.is_some());
    c.accept_alert().await.unwrap();
    until("the notice", || async {
        text_of(&c, ".notice").await.contains("Requeued job")
    })
    .await;
    let st = text_of(&c, "#job-status").await;
    assert!(
        st.contains("PENDING") || st.contains("RUNNING") || st.contains("DEAD_LETTER"),
        "{st}"
    );
    let audit = queue
        .audit_log(&jobs::AuditFilter::default().limit(1))
        .await
        .unwrap();
    assert_eq!(
        (audit[0].action.as_str(), audit[0].actor.as_str()),
        ("requeue", "dashboard")
    );
    let job = queue.get(dead).await.unwrap().unwrap();
    assert!(job.attempt >= 1);

    // -- Pause a queue and see the manager stop claiming from it.
    c.goto(&format!("{base}/queues")).await.unwrap();
    c.find(Locator::Css(
        "tr[data-queue=emails] button[data-action=pause]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    assert!(open_dialog(&c)
        .await
        .is_some_and(|t| t.contains("Pause queue emails")));
    c.accept_alert().await.unwrap();
    until("the paused queue", || async {
        text_of(&c, "tr[data-queue=emails]")
            .await
            .contains("paused")
    })
    .await;
    assert_eq!(queue.paused().await.unwrap(), vec!["emails".to_owned()]);
    let held = queue
        .enqueue_raw(
            "email.send",
            json!({ "outcome": "ok", "to": "held@example.com" }),
        )
        .queue("emails")
        .await
        .unwrap()
        .id();
    // A job in another queue still runs, so the manager is claiming...
    let other = queue
        .enqueue_raw("report.build", json!({ "outcome": "ok" }))
        .queue("reports")
        .await
        .unwrap()
        .id();
    dashboard_support_wait(&queue, other, JobStatus::Completed).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ...but not from the paused one.
    assert_eq!(status(&queue, held).await, JobStatus::Pending);
    shot(&c, "queues").await;
    c.find(Locator::Css(
        "tr[data-queue=emails] button[data-action=resume]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    c.accept_alert().await.unwrap();
    until("the resumed queue", || async {
        text_of(&c, ".notice")
            .await
            .contains("Resumed queue emails")
    })
    .await;
    dashboard_support_wait(&queue, held, JobStatus::Completed).await;

    // -- The XSS payloads are inert: no dialog, the text shown.
    c.goto(&format!("{base}/jobs/{}", s.xss)).await.unwrap();
    until("the XSS job page", || async {
        text_of(&c, "#payload").await.contains(XSS_SCRIPT)
    })
    .await;
    assert!(text_of(&c, "#payload").await.contains(XSS_IMG));
    assert!(text_of(&c, "#error-message").await.contains(XSS_SCRIPT));
    assert!(text_of(&c, "#job-meta").await.contains(XSS_QUEUE));
    for page in [
        format!("{base}/jobs/{}", s.xss),
        format!("{base}/"),
        format!("{base}/jobs"),
        format!("{base}/queues"),
    ] {
        c.goto(&page).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(open_dialog(&c).await, None, "a dialog opened on {page}");
        let imgs = c.find_all(Locator::Css("img")).await.unwrap();
        assert!(imgs.is_empty(), "an <img> was injected on {page}");
        let scripts = c
            .execute(
                "return Array.from(document.scripts).filter(s => !s.src).length",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(scripts, json!(0), "an inline script on {page}");
    }

    // -- The other pages, for the record.
    c.goto(&format!("{base}/workers")).await.unwrap();
    until("the workers page", || async {
        text_of(&c, "#workers").await.contains("test-worker-1")
    })
    .await;
    shot(&c, "workers").await;
    c.goto(&format!("{base}/audit")).await.unwrap();
    until("the audit page", || async {
        text_of(&c, "#audit").await.contains("pause")
    })
    .await;
    shot(&c, "audit").await;

    // -- A running job's page follows it: cancelled elsewhere, it turns FAILED
    // without a reload.
    c.goto(&format!("{base}/jobs/{long}")).await.unwrap();
    until("the running job's page", || async {
        text_of(&c, "#job-status").await.contains("RUNNING")
    })
    .await;
    queue
        .cancel_with(long, &jobs::CancelRequest::by("ops"))
        .await
        .unwrap();
    until("the job's page to show it cancelled", || async {
        let st = text_of(&c, "#job-status").await;
        st.contains("FAILED") && st.contains("cancelled")
    })
    .await;

    c.close().await.unwrap();
    drop(driver);
    manager.stop().await.unwrap();
    server.abort();
}

async fn dashboard_support_wait(queue: &Queue, id: jobs::JobId, want: JobStatus) {
    until(&format!("job {id} to be {want}"), || async {
        status(queue, id).await == want
    })
    .await;
}
