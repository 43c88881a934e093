//! The Lua scripts (`*.lua` beside this file, each prefixed with
//! `common.lua`), how much work one call of them does, and how they are run.

use std::sync::LazyLock;

use jobs_core::{BackendErrorKind, Error, Result};
use redis::aio::ConnectionManager;
use redis::{Cmd, ErrorKind, RedisError, Script, ServerErrorKind, Value};

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
/// Jobs a `list` scan looks at per script call.
pub(super) const LIST_SCAN: usize = 1_000;
/// The largest value Redis takes in one argument by default
/// (`proto-max-bulk-len`, 512 MiB). A bigger one makes Redis drop the
/// connection, which would look like an outage and be retried for ever; it is
/// refused before sending instead, as data Redis cannot store.
pub(super) const MAX_VALUE_BYTES: usize = 512 << 20;

macro_rules! lua {
    ($name:literal) => {
        Script::new(concat!(
            include_str!("common.lua"),
            "\n",
            include_str!(concat!($name, ".lua"))
        ))
    };
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
});

/// The sources of the enqueue and record scripts, for `EVAL` inside `MULTI`
/// (where a missing-script error could not be retried).
pub(super) const ENQUEUE_SRC: &str = concat!(
    include_str!("common.lua"),
    "\n",
    include_str!("enqueue.lua")
);
pub(super) const RECORD_SRC: &str =
    concat!(include_str!("common.lua"), "\n", include_str!("record.lua"));

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
