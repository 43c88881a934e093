//! Which URLs open a database: a durable queue needs a path.

use jobs_core::NewJob;
use jobs_runtime::backend::sqlite::SqliteBackend;
use serde_json::json;

use crate::{temp_db, url_of};

/// `connect` refuses a SQLite URL without a database path, which SQLite would
/// quietly open as a temporary database that loses every job with its
/// connection; in memory has to be asked for by name.
#[tokio::test]
async fn urls_without_a_path_are_refused() {
    for url in [
        "sqlite://",
        "sqlite:",
        "sqlite://?mode=rwc",
        "sqlite://?mode=ro",
        "sqlite:?cache=shared",
    ] {
        let err = jobs_runtime::connect(url).await.expect_err(url);
        assert!(
            matches!(err, jobs_core::Error::Connect { .. }),
            "{url}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("no database path") && msg.contains("sqlite::memory:"),
            "{url}: {msg}"
        );
        let err = SqliteBackend::connect(url).await.expect_err(url);
        assert!(
            matches!(err, jobs_core::Error::Connect { .. }),
            "{url}: {err:?}"
        );
    }
    let dir = temp_db("dir").with_extension("");
    std::fs::create_dir_all(&dir).expect("dir");
    let err = jobs_runtime::connect(&url_of(&dir)).await.unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
    // The explicit in-memory forms still open.
    for url in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite://?mode=memory",
    ] {
        let q = jobs_runtime::connect(url).await.expect(url);
        q.backend()
            .enqueue_batch(vec![NewJob::new("t", json!({}))])
            .await
            .expect(url);
    }
}
