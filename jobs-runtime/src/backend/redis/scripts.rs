//! The Lua scripts (`*.lua` beside this file, each prefixed with the parts
//! of `common.lua` it uses), how much work one call of them does, and how
//! they are run.

use std::collections::HashSet;
use std::sync::LazyLock;

use jobs_core::{BackendErrorKind, Error, Result};
use redis::aio::ConnectionManager;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, Script, ServerErrorKind, Value};

pub(super) const BACKEND: &str = "redis";

/// Jobs per enqueue script; bigger batches run as several chunks in one MULTI.
pub(super) const CHUNK_JOBS: usize = 1_000;
/// Bytes of arguments per enqueue script (payloads can be large).
pub(super) const CHUNK_BYTES: usize = 8 << 20;
/// Due delayed jobs promoted per queue and claim.
pub(super) const PROMOTE_PER_CLAIM: usize = 1_000;
/// Jobs recovered, pruned, heartbeated or recorded per script call.
pub(super) const PER_CALL: usize = 1_000;
/// Most jobs one claim returns (a bigger `limit` gets this many).
pub(super) const CLAIM_PER_CALL: usize = 1_000;
/// Candidates a claim looks at per queue and call: jobs that limits hold
/// back beyond these stay for the next call (which says `limited`).
pub(super) const CLAIM_SCAN: usize = 1_000;
/// Jobs read per `get` script call (a bigger `get_many` sends several calls
/// in one pipeline).
pub(super) const GET_PER_CALL: usize = 500;
/// Jobs a `list` scan looks at per script call.
pub(super) const LIST_SCAN: usize = 1_000;
/// The largest value Redis takes in one argument by default
/// (`proto-max-bulk-len`, 512 MiB). A bigger one makes Redis drop the
/// connection, which would look like an outage and be retried for ever; it is
/// refused before sending instead, as data Redis cannot store.
pub(super) const MAX_VALUE_BYTES: usize = 512 << 20;

macro_rules! lua {
    ($name:literal) => {
        Script::new(&source(include_str!(concat!($name, ".lua"))))
    };
}

/// A script as sent: the definitions of `common.lua` that `body` uses
/// (directly or through other definitions), then `body`.
///
/// Redis runs a script's whole text on every call, so each definition of the
/// prelude costs every call the closure or table it builds (the full prelude
/// measured about 6.5 µs a call on Redis 7.0, against 2 µs for an empty
/// script), and most scripts use a few of them. Every top-level statement of
/// `common.lua` is a `local` definition starting a line, and a Lua local is
/// seen only after its definition, so one backwards pass finds what is used.
/// A name that only appears in a string or after code on a line costs at
/// most a definition too many, never one too few.
fn source(body: &str) -> String {
    let common = include_str!("common.lua");
    // (names defined, text), in file order.
    let mut defs: Vec<(Vec<&str>, String)> = Vec::new();
    for line in common.lines() {
        if let Some(rest) = line.strip_prefix("local ") {
            let names = match rest.strip_prefix("function ") {
                Some(f) => vec![f.split('(').next().unwrap_or_default().trim()],
                None => rest
                    .split('=')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .collect(),
            };
            defs.push((names, String::new()));
        }
        if let Some((_, text)) = defs.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    // Whole comment lines are skipped (a comment naming a definition would
    // cost it); a comment after code on its line is read as code.
    let idents = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut used: HashSet<String> = idents(body).into_iter().collect();
    let mut keep = vec![false; defs.len()];
    for (i, (names, text)) in defs.iter().enumerate().rev() {
        if names.iter().any(|n| used.contains(*n)) {
            keep[i] = true;
            used.extend(idents(text));
        }
    }
    let mut out = String::with_capacity(common.len() + body.len());
    for ((_, text), keep) in defs.iter().zip(keep) {
        if keep {
            out.push_str(text);
        }
    }
    out.push('\n');
    out.push_str(body);
    out
}

pub(super) struct Scripts {
    pub(super) enqueue: Script,
    pub(super) claim: Script,
    pub(super) heartbeat: Script,
    pub(super) record: Script,
    pub(super) recover: Script,
    pub(super) cancel: Script,
    pub(super) requeue: Script,
    pub(super) prune: Script,
    pub(super) list: Script,
    pub(super) page: Script,
    pub(super) due_index: Script,
    pub(super) next_due: Script,
    pub(super) get: Script,
    pub(super) delete: Script,
    pub(super) progress: Script,
    pub(super) pause: Script,
    pub(super) worker: Script,
    pub(super) lead: Script,
    pub(super) schedule: Script,
    pub(super) audit: Script,
    pub(super) throughput: Script,
    pub(super) requeue_many: Script,
    pub(super) settle: Script,
    pub(super) release: Script,
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    enqueue: lua!("enqueue"),
    claim: lua!("claim"),
    heartbeat: lua!("heartbeat"),
    record: lua!("record"),
    recover: lua!("recover"),
    cancel: lua!("cancel"),
    requeue: lua!("requeue"),
    prune: lua!("prune"),
    list: lua!("list"),
    page: lua!("page"),
    due_index: lua!("due_index"),
    next_due: lua!("next_due"),
    get: lua!("get"),
    delete: lua!("delete"),
    progress: lua!("progress"),
    pause: lua!("pause"),
    worker: lua!("worker"),
    lead: lua!("lead"),
    schedule: lua!("schedule"),
    audit: lua!("audit"),
    throughput: lua!("throughput"),
    requeue_many: lua!("requeue_many"),
    settle: lua!("settle"),
    release: lua!("release"),
});

/// The sources of the enqueue and record scripts, for `EVAL` inside `MULTI`
/// (where a missing-script error could not be retried).
pub(super) static ENQUEUE_SRC: LazyLock<String> =
    LazyLock::new(|| source(include_str!("enqueue.lua")));
pub(super) static RECORD_SRC: LazyLock<String> =
    LazyLock::new(|| source(include_str!("record.lua")));

/// The framework's error for a client error, with its kind: is Redis away,
/// busy for a moment, refusing a value, or refusing the call for good?
pub(super) fn backend_err(e: RedisError) -> Error {
    use redis::{ErrorKind as K, ServerErrorKind as S};
    let kind = if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
    {
        BackendErrorKind::Unavailable
    } else if e.code() == Some("OOM") {
        // `maxmemory` reached: writes work again once memory is freed.
        BackendErrorKind::Transient
    } else if refuses_a_value(&e) {
        BackendErrorKind::Data
    } else {
        match e.kind() {
            K::Server(S::BusyLoading | S::TryAgain | S::ClusterDown | S::MasterDown) => {
                BackendErrorKind::Unavailable
            }
            K::Server(S::ReadOnly) => BackendErrorKind::Transient,
            _ => BackendErrorKind::Other,
        }
    };
    Error::backend(BACKEND, kind, e)
}

/// Whether Redis refused a value as too large (`string exceeds maximum
/// allowed size`, `invalid bulk length`): the same call would fail again.
fn refuses_a_value(e: &RedisError) -> bool {
    let detail = e.detail().unwrap_or_default();
    detail.contains("exceeds maximum allowed size") || detail.contains("invalid bulk length")
}

/// A reply this version does not understand.
pub(super) fn unexpected(what: impl std::fmt::Display) -> Error {
    Error::backend_msg(BACKEND, BackendErrorKind::Other, what.to_string())
}

/// `EVALSHA <script> 1 <ns>`, ready for the script's arguments. Built
/// directly instead of through `ScriptInvocation`, which keeps every argument
/// in a vector of its own and copies them all again into the command.
pub(super) fn script_cmd(script: &Script, ns: &str, n_args: usize, bytes: usize) -> Cmd {
    let mut cmd = Cmd::with_capacity(4 + n_args, 64 + ns.len() + bytes);
    cmd.arg("EVALSHA").arg(script.get_hash()).arg(1).arg(ns);
    cmd
}

/// Runs a command from [`script_cmd`]; loads the script first if Redis lost it
/// (after a restart or `SCRIPT FLUSH`).
pub(super) async fn run_script(
    script: &Script,
    cmd: &Cmd,
    conn: &mut ConnectionManager,
) -> Result<Value> {
    match cmd.query_async(conn).await {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            script.load_async(conn).await.map_err(backend_err)?;
            cmd.query_async(conn).await.map_err(backend_err)
        }
        other => other.map_err(backend_err),
    }
}

/// Runs a pipeline of commands from [`script_cmd`], all of `script`; loads
/// the script first if Redis lost it, as [`run_script`] does.
pub(super) async fn run_pipeline(
    script: &Script,
    pipe: &Pipeline,
    conn: &mut ConnectionManager,
) -> Result<Vec<Value>> {
    match pipe.query_async(conn).await {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            script.load_async(conn).await.map_err(backend_err)?;
            pipe.query_async(conn).await.map_err(backend_err)
        }
        other => other.map_err(backend_err),
    }
}

#[cfg(test)]
mod tests {
    use super::source;

    fn defines(src: &str, def: &str) -> bool {
        src.lines().any(|l| l.starts_with(def))
    }

    #[test]
    fn a_script_gets_the_definitions_it_uses_and_theirs() {
        let claim = source(include_str!("claim.lua"));
        // Used directly, and through `flush_counts` (TP_FIELD, n2s).
        for def in [
            "local K = ",
            "local function now_us(",
            "local function flush_counts(",
            "local TP_FIELD = ",
            "local function n2s(",
        ] {
            assert!(defines(&claim, def), "claim lacks `{def}`");
        }
        // Not used by the claim.
        for def in [
            "local function push_error(",
            "local FIELDS = ",
            "local function iso(",
        ] {
            assert!(!defines(&claim, def), "claim has `{def}`");
        }
        assert!(claim.ends_with(include_str!("claim.lua")));
        // Definitions keep their order: a Lua local is seen only after it.
        let k = claim.find("local K = ").unwrap_or(usize::MAX);
        let jkey = claim.find("local function jkey(").unwrap_or(0);
        assert!(k < jkey);
    }
}
