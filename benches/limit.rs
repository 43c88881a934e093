//! The `limit` workload: each durable backend's limit on this machine, in
//! this run — the minimal durable protocol with no framework at all, so that
//! every figure of the framework can be printed as a percentage of what the
//! database itself allows today (absolute figures move from day to day on a
//! shared machine; ratios measured together do not).
//!
//! For a backend, three loops, each one client on one connection:
//! * **one statement**: claim a batch of 16 due jobs and mark them done in
//!   one statement (one script on Redis) — no handler could run in between,
//!   so nothing can go faster than this;
//! * **claim, then complete**: claim 16 under a lease (status, lease expiry,
//!   a token) returning their payloads, then complete those 16 fenced by
//!   their token — two commits per batch, the durable protocol a worker
//!   needs, done one batch at a time;
//! * **single inserts**: one job inserted per statement, awaited one after
//!   another (W2's limit).
//!
//! SQLite runs them natively (rusqlite: statements prepared once, called on
//! the bench's own thread, no driver thread) and through sqlx (the driver
//! the backend uses: each statement is a hand-off to its worker thread).
//! The native one-statement loop is the limit the README quotes.
//!
//! Each run uses tables or keys of its own (a fresh SQLite file beside the
//! bench URL's, a schema `bench_limit_<random>` dropped afterwards, keys
//! under `bench-limit-<random>:` deleted afterwards).

use std::time::Instant;

use sqlx::{Connection, Executor, Row};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The rates (jobs/s) of one backend's loops.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub one_statement: f64,
    pub claim_complete: f64,
    pub insert: f64,
}

const BATCH: usize = 16;

fn rate(n: usize, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
}

fn print(label: &str, n: usize, jobs_per_s: f64) {
    println!(
        "| limit: {label} {n:>9} jobs | {:>8.2} s | {jobs_per_s:>9.0} jobs/s |",
        n as f64 / jobs_per_s
    );
}

/// Measures the limits of the backend at `url` with `n` jobs per drain.
/// `None` for the memory backend, which has no database under it.
pub async fn measure(url: &str, n: usize) -> Result<Option<Limits>, Error> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path.starts_with(":memory:") || path == "memory:" {
            println!("| limit: skipped for an in-memory SQLite database |");
            return Ok(None);
        }
        Ok(Some(sqlite(path, n).await?))
    } else if url.starts_with("postgres") {
        Ok(Some(
            postgres(url.split('?').next().unwrap_or(url), n).await?,
        ))
    } else if url.starts_with("redis") {
        Ok(Some(
            redis_limits(url.split('?').next().unwrap_or(url), n).await?,
        ))
    } else {
        println!("| limit: none for {url} (no database under it) |");
        Ok(None)
    }
}

// --- SQLite ---------------------------------------------------------------

const SQLITE_SCHEMA: &str = "
    CREATE TABLE jobs (
        id          INTEGER PRIMARY KEY,
        queue       TEXT    NOT NULL,
        payload     TEXT    NOT NULL,
        status      INTEGER NOT NULL,
        run_at      INTEGER NOT NULL,
        lease_until INTEGER,
        token       INTEGER
    );
    CREATE INDEX jobs_ready ON jobs (queue, run_at) WHERE status = 0;";

const SQLITE_ONE: &str = "UPDATE jobs SET status = 2 WHERE id IN (
    SELECT id FROM jobs WHERE queue = 'q' AND status = 0 ORDER BY run_at LIMIT 16)
    RETURNING id, payload";
const SQLITE_CLAIM: &str = "UPDATE jobs SET status = 1, lease_until = ?1, token = ?2
    WHERE id IN (SELECT id FROM jobs WHERE queue = 'q' AND status = 0 ORDER BY run_at LIMIT 16)
    RETURNING id, payload";
const SQLITE_COMPLETE: &str = "UPDATE jobs SET status = 2, lease_until = NULL, token = NULL
    WHERE id IN (SELECT value FROM json_each(?1)) AND token = ?2 AND status = 1";
const SQLITE_INSERT: &str =
    "INSERT INTO jobs (queue, payload, status, run_at) VALUES ('q', ?1, 0, ?2)";

fn payload(i: usize) -> String {
    format!("{{\"n\":{i}}}")
}

/// A fresh database file beside `base` (WAL, `synchronous = NORMAL`, as the
/// backend opens its own), filled with `n` due jobs unless `n` is 0.
fn sqlite_file(base: &str, tag: &str, n: usize) -> Result<(String, rusqlite::Connection), Error> {
    let path = format!("{base}-limit-{tag}-{:08x}.db", fastrand::u32(..));
    let conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SQLITE_SCHEMA)?;
    {
        let tx = conn.unchecked_transaction()?;
        let mut ins = tx.prepare(SQLITE_INSERT)?;
        for i in 0..n {
            ins.execute(rusqlite::params![payload(i), i as i64])?;
        }
        drop(ins);
        tx.commit()?;
    }
    Ok((path, conn))
}

fn remove_sqlite(path: &str) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}

/// The native loops, on a blocking thread: (one statement, claim then
/// complete, single inserts).
fn sqlite_native(base: &str, n: usize) -> Result<Limits, Error> {
    let (path, conn) = sqlite_file(base, "one", n)?;
    let t = Instant::now();
    let mut done = 0;
    {
        let mut one = conn.prepare_cached(SQLITE_ONE)?;
        loop {
            let mut rows = one.query([])?;
            let mut got = 0;
            while let Some(row) = rows.next()? {
                let _: (i64, String) = (row.get(0)?, row.get(1)?);
                got += 1;
            }
            if got == 0 {
                break;
            }
            done += got;
        }
    }
    let one_statement = rate(done, t);
    assert_eq!(done, n, "the one-statement loop must finish every job");
    drop(conn);
    remove_sqlite(&path);

    let (path, conn) = sqlite_file(base, "two", n)?;
    let t = Instant::now();
    let mut done = 0;
    {
        let mut claim = conn.prepare_cached(SQLITE_CLAIM)?;
        let mut complete = conn.prepare_cached(SQLITE_COMPLETE)?;
        loop {
            let token = fastrand::i64(..);
            let lease = chrono::Utc::now().timestamp_micros() + 30_000_000;
            let mut ids = Vec::with_capacity(BATCH);
            let mut rows = claim.query(rusqlite::params![lease, token])?;
            while let Some(row) = rows.next()? {
                let (id, _payload): (i64, String) = (row.get(0)?, row.get(1)?);
                ids.push(id);
            }
            drop(rows);
            if ids.is_empty() {
                break;
            }
            let list = serde_json::to_string(&ids)?;
            let changed = complete.execute(rusqlite::params![list, token])?;
            assert_eq!(changed, ids.len(), "every fence holds");
            done += changed;
        }
    }
    let claim_complete = rate(done, t);
    assert_eq!(
        done, n,
        "the claim-then-complete loop must finish every job"
    );
    drop(conn);
    remove_sqlite(&path);

    let inserts = n.min(5_000);
    let (path, conn) = sqlite_file(base, "ins", 0)?;
    let t = Instant::now();
    {
        let mut ins = conn.prepare_cached(SQLITE_INSERT)?;
        for i in 0..inserts {
            ins.execute(rusqlite::params![payload(i), i as i64])?;
        }
    }
    let insert = rate(inserts, t);
    drop(conn);
    remove_sqlite(&path);
    Ok(Limits {
        one_statement,
        claim_complete,
        insert,
    })
}

/// The same loops through sqlx's SQLite driver (statements cached by sqlx).
async fn sqlite_sqlx(base: &str, n: usize) -> Result<Limits, Error> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    async fn open(
        base: &str,
        tag: &str,
        n: usize,
    ) -> Result<(String, sqlx::SqliteConnection), Error> {
        // Filled natively (the setup is not measured), then reopened by sqlx.
        let (path, conn) = sqlite_file(base, tag, n)?;
        drop(conn);
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        Ok((path, sqlx::SqliteConnection::connect_with(&opts).await?))
    }

    let (path, mut conn) = open(base, "sqlx-one", n).await?;
    let t = Instant::now();
    let mut done = 0;
    loop {
        let rows = sqlx::query(SQLITE_ONE).fetch_all(&mut conn).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let _: (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        }
        done += rows.len();
    }
    let one_statement = rate(done, t);
    assert_eq!(done, n, "the one-statement loop must finish every job");
    conn.close().await?;
    remove_sqlite(&path);

    let (path, mut conn) = open(base, "sqlx-two", n).await?;
    let t = Instant::now();
    let mut done = 0;
    loop {
        let token = fastrand::i64(..);
        let lease = chrono::Utc::now().timestamp_micros() + 30_000_000;
        let rows = sqlx::query(SQLITE_CLAIM)
            .bind(lease)
            .bind(token)
            .fetch_all(&mut conn)
            .await?;
        if rows.is_empty() {
            break;
        }
        let ids = rows
            .iter()
            .map(|r| {
                let _: String = r.try_get(1)?;
                r.try_get::<i64, _>(0)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let changed = sqlx::query(SQLITE_COMPLETE)
            .bind(serde_json::to_string(&ids)?)
            .bind(token)
            .execute(&mut conn)
            .await?
            .rows_affected();
        assert_eq!(changed as usize, ids.len(), "every fence holds");
        done += ids.len();
    }
    let claim_complete = rate(done, t);
    assert_eq!(
        done, n,
        "the claim-then-complete loop must finish every job"
    );
    conn.close().await?;
    remove_sqlite(&path);

    let inserts = n.min(5_000);
    let (path, mut conn) = open(base, "sqlx-ins", 0).await?;
    let t = Instant::now();
    for i in 0..inserts {
        sqlx::query(SQLITE_INSERT)
            .bind(payload(i))
            .bind(i as i64)
            .execute(&mut conn)
            .await?;
    }
    let insert = rate(inserts, t);
    conn.close().await?;
    remove_sqlite(&path);
    Ok(Limits {
        one_statement,
        claim_complete,
        insert,
    })
}

async fn sqlite(path: &str, n: usize) -> Result<Limits, Error> {
    let base = path.to_owned();
    let native = tokio::task::spawn_blocking(move || sqlite_native(&base, n)).await??;
    print(
        "SQLite native, claim 16 + done in one statement",
        n,
        native.one_statement,
    );
    print(
        "SQLite native, claim 16 then complete (2 commits)",
        n,
        native.claim_complete,
    );
    print("SQLite native, single inserts", n.min(5_000), native.insert);
    let via = sqlite_sqlx(path, n).await?;
    print(
        "SQLite sqlx, claim 16 + done in one statement",
        n,
        via.one_statement,
    );
    print(
        "SQLite sqlx, claim 16 then complete (2 commits)",
        n,
        via.claim_complete,
    );
    print("SQLite sqlx, single inserts", n.min(5_000), via.insert);
    Ok(native)
}

// --- PostgreSQL -----------------------------------------------------------

async fn postgres(url: &str, n: usize) -> Result<Limits, Error> {
    let schema = format!("bench_limit_{:08x}", fastrand::u32(..));
    let mut conn = sqlx::PgConnection::connect(url).await?;
    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await?;
    let out = postgres_in(&mut conn, &schema, n).await;
    conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await?;
    conn.close().await?;
    let limits = out?;
    print(
        "PostgreSQL, claim 16 + done in one statement",
        n,
        limits.one_statement,
    );
    print(
        "PostgreSQL, claim 16 then complete (2 commits)",
        n,
        limits.claim_complete,
    );
    print("PostgreSQL, single inserts", n.min(5_000), limits.insert);
    Ok(limits)
}

async fn postgres_in(
    conn: &mut sqlx::PgConnection,
    schema: &str,
    n: usize,
) -> Result<Limits, Error> {
    conn.execute(format!("SET search_path TO {schema}").as_str())
        .await?;
    let create = |table: &str| {
        format!(
            "CREATE TABLE {table} (
                id          bigserial PRIMARY KEY,
                queue       text      NOT NULL,
                payload     jsonb     NOT NULL,
                status      smallint  NOT NULL,
                run_at      timestamptz NOT NULL DEFAULT now(),
                lease_until timestamptz,
                token       bigint
             );
             CREATE INDEX {table}_ready ON {table} (queue, run_at, id) WHERE status = 0"
        )
    };
    let fill = |table: &str| {
        format!(
            "INSERT INTO {table} (queue, payload, status)
             SELECT 'q', jsonb_build_object('n', i), 0 FROM generate_series(1, {n}) i"
        )
    };
    for table in ["one", "two", "ins"] {
        conn.execute(create(table).as_str()).await?;
    }
    conn.execute(fill("one").as_str()).await?;
    conn.execute(fill("two").as_str()).await?;
    conn.execute("ANALYZE").await?;

    let one = "UPDATE one SET status = 2 WHERE id IN (
        SELECT id FROM one WHERE queue = 'q' AND status = 0 ORDER BY run_at, id LIMIT 16
        FOR UPDATE SKIP LOCKED) RETURNING id, payload";
    let t = Instant::now();
    let mut done = 0;
    loop {
        let rows = sqlx::query(one).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let _: (i64, serde_json::Value) = (row.try_get(0)?, row.try_get(1)?);
        }
        done += rows.len();
    }
    let one_statement = rate(done, t);
    assert_eq!(done, n, "the one-statement loop must finish every job");

    let claim = "UPDATE two SET status = 1, lease_until = now() + interval '30 s', token = $1
        WHERE id IN (SELECT id FROM two WHERE queue = 'q' AND status = 0
                     ORDER BY run_at, id LIMIT 16 FOR UPDATE SKIP LOCKED)
        RETURNING id, payload";
    let complete = "UPDATE two SET status = 2, lease_until = NULL, token = NULL
        WHERE id = ANY($1) AND token = $2 AND status = 1";
    let t = Instant::now();
    let mut done = 0;
    loop {
        let token = fastrand::i64(..);
        let rows = sqlx::query(claim).bind(token).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            break;
        }
        let ids = rows
            .iter()
            .map(|r| {
                let _: serde_json::Value = r.try_get(1)?;
                r.try_get::<i64, _>(0)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let changed = sqlx::query(complete)
            .bind(&ids)
            .bind(token)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        assert_eq!(changed as usize, ids.len(), "every fence holds");
        done += ids.len();
    }
    let claim_complete = rate(done, t);
    assert_eq!(
        done, n,
        "the claim-then-complete loop must finish every job"
    );

    let inserts = n.min(5_000);
    let t = Instant::now();
    for i in 0..inserts {
        sqlx::query("INSERT INTO ins (queue, payload, status) VALUES ('q', $1, 0)")
            .bind(serde_json::json!({ "n": i }))
            .execute(&mut *conn)
            .await?;
    }
    let insert = rate(inserts, t);
    Ok(Limits {
        one_statement,
        claim_complete,
        insert,
    })
}

// --- Redis ----------------------------------------------------------------

/// Claims up to 16 due jobs of `KEYS[1]` (a sorted set of ids by due time)
/// and marks them done: one script call per batch.
const REDIS_ONE: &str = r"
local popped = redis.call('ZPOPMIN', KEYS[1], 16)
local out = {}
for i = 1, #popped, 2 do
  local key = ARGV[1] .. popped[i]
  out[#out + 1] = popped[i]
  out[#out + 1] = redis.call('HGET', key, 'p')
  redis.call('HSET', key, 's', 'C')
end
return out";

/// Claims up to 16 due jobs under a lease: status, lease expiry and token in
/// the job's hash, the id in the lease set `KEYS[2]`; returns ids and payloads.
const REDIS_CLAIM: &str = r"
local popped = redis.call('ZPOPMIN', KEYS[1], 16)
local out = {}
local leases = {}
for i = 1, #popped, 2 do
  local key = ARGV[1] .. popped[i]
  out[#out + 1] = popped[i]
  out[#out + 1] = redis.call('HGET', key, 'p')
  redis.call('HSET', key, 's', 'R', 'lu', ARGV[3], 'lt', ARGV[2])
  leases[#leases + 1] = ARGV[3]
  leases[#leases + 1] = popped[i]
end
if #leases > 0 then redis.call('ZADD', KEYS[2], unpack(leases)) end
return out";

/// Completes the jobs `ARGV[3..]` if they still hold token `ARGV[2]`:
/// done (`ARGV[4]` = 'keep') or deleted; out of the lease set either way.
const REDIS_COMPLETE: &str = r"
local done = 0
for i = 4, #ARGV do
  local key = ARGV[1] .. ARGV[i]
  if redis.call('HGET', key, 'lt') == ARGV[2] then
    if ARGV[3] == 'keep' then
      redis.call('HSET', key, 's', 'C', 'lu', '', 'lt', '')
    else
      redis.call('DEL', key)
    end
    redis.call('ZREM', KEYS[2], ARGV[i])
    done = done + 1
  end
end
return done";

async fn redis_fill(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    ready: &str,
    n: usize,
) -> Result<(), Error> {
    for start in (0..n).step_by(1_000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 1_000).min(n) {
            pipe.cmd("HSET")
                .arg(format!("{prefix}{i}"))
                .arg("p")
                .arg(payload(i))
                .arg("s")
                .arg("P")
                .ignore();
            pipe.cmd("ZADD").arg(ready).arg(i).arg(i).ignore();
        }
        pipe.query_async::<()>(conn).await?;
    }
    Ok(())
}

async fn redis_clean(
    conn: &mut redis::aio::MultiplexedConnection,
    base: &str,
) -> Result<(), Error> {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{base}*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

async fn redis_limits(url: &str, n: usize) -> Result<Limits, Error> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let base = format!("bench-limit-{:08x}:", fastrand::u32(..));
    let out = redis_in(&mut conn, &base, n).await;
    redis_clean(&mut conn, &base).await?;
    let (limits, dropped) = out?;
    print(
        "Redis, claim 16 + done in one script",
        n,
        limits.one_statement,
    );
    print(
        "Redis, claim 16 then complete (2 scripts), kept",
        n,
        limits.claim_complete,
    );
    print(
        "Redis, claim 16 then complete (2 scripts), dropped",
        n,
        dropped,
    );
    print(
        "Redis, single inserts (HSET + ZADD, one script)",
        n.min(5_000),
        limits.insert,
    );
    Ok(limits)
}

/// (limits with completed jobs kept, the claim-then-complete rate with
/// completed jobs deleted).
async fn redis_in(
    conn: &mut redis::aio::MultiplexedConnection,
    base: &str,
    n: usize,
) -> Result<(Limits, f64), Error> {
    let one = redis::Script::new(REDIS_ONE);
    let claim = redis::Script::new(REDIS_CLAIM);
    let complete = redis::Script::new(REDIS_COMPLETE);

    let prefix = format!("{base}one:");
    let ready = format!("{base}one-ready");
    redis_fill(conn, &prefix, &ready, n).await?;
    let t = Instant::now();
    let mut done = 0;
    loop {
        let got: Vec<String> = one.key(&ready).arg(&prefix).invoke_async(conn).await?;
        if got.is_empty() {
            break;
        }
        done += got.len() / 2;
    }
    let one_statement = rate(done, t);
    assert_eq!(done, n, "the one-script loop must finish every job");

    let mut two = [0.0; 2];
    for (slot, retention) in two.iter_mut().zip(["keep", "drop"]) {
        let prefix = format!("{base}{retention}:");
        let ready = format!("{base}{retention}-ready");
        let leases = format!("{base}{retention}-leases");
        redis_fill(conn, &prefix, &ready, n).await?;
        let t = Instant::now();
        let mut done = 0;
        loop {
            let token = format!("{:016x}", fastrand::u64(..));
            let lease = chrono::Utc::now().timestamp_micros() + 30_000_000;
            let got: Vec<String> = claim
                .key(&ready)
                .key(&leases)
                .arg(&prefix)
                .arg(&token)
                .arg(lease)
                .invoke_async(conn)
                .await?;
            if got.is_empty() {
                break;
            }
            let mut call = complete.key(&ready);
            call.key(&leases).arg(&prefix).arg(&token).arg(retention);
            for pair in got.chunks(2) {
                call.arg(&pair[0]);
            }
            let changed: usize = call.invoke_async(conn).await?;
            assert_eq!(changed, got.len() / 2, "every fence holds");
            done += changed;
        }
        *slot = rate(done, t);
        assert_eq!(
            done, n,
            "the claim-then-complete loop must finish every job"
        );
    }

    let insert_script = redis::Script::new(
        "redis.call('HSET', KEYS[1], 'p', ARGV[1], 's', 'P')
         redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
         return 1",
    );
    let inserts = n.min(5_000);
    let ready = format!("{base}ins-ready");
    let t = Instant::now();
    for i in 0..inserts {
        let _: i64 = insert_script
            .key(format!("{base}ins:{i}"))
            .key(&ready)
            .arg(payload(i))
            .arg(i)
            .arg(i)
            .invoke_async(conn)
            .await?;
    }
    let insert = rate(inserts, t);
    Ok((
        Limits {
            one_statement,
            claim_complete: two[0],
            insert,
        },
        two[1],
    ))
}
