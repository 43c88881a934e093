-- Shared prelude of every script (prepended at compile time).
-- KEYS[1] is the namespace tag `{prefix}`; every other key of the namespace is
-- built from it, so all of them hash to the same Redis Cluster slot.
local K = KEYS[1]

-- Redis server time in microseconds: one clock for every machine.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Lua turns numbers into strings with 14 significant digits; timestamps in
-- microseconds need 16, so every number sent to Redis goes through this.
-- Integer formatting (`%d`, a C long) is several times cheaper than `%.0f`;
-- values beyond 2^53 (never real timestamps) take the float path.
local function n2s(x)
  if x > -9e15 and x < 9e15 then
    return string.format('%d', x)
  end
  return string.format('%.0f', x)
end

local function jkey(id)
  return K .. ':j:' .. id
end

-- Member of the ready and delayed sets: zero-padded run_at and enqueue
-- sequence, then the id. Equal scores sort by member, so within one priority
-- jobs come out by run_at, then enqueue order.
local ID_AT = 34
local function member(ra, sq, id)
  ra = tonumber(ra) or 0
  sq = tonumber(sq) or 0
  if ra < 0 then ra = 0 end
  if ra < 9e15 and sq < 9e15 then
    return string.format('%017d%016d%s', ra, sq, id)
  end
  return string.format('%017.0f%016.0f', ra, sq) .. id
end

-- Hash fields returned for a job, in the order the Rust side reads them
-- (`row::col`; the claim returns a hash's pairs instead, read by name). Fields
-- added later go at the end, so older positions never move.
local FIELDS = {'q', 't', 'p', 's', 'pr', 'rc', 'mr', 'ra', 'ca', 'sa', 'fa',
                'em', 'er', 'rd', 'md', 'lb', 'lu', 'at', 'lt', 'ec', 'cx', 'to',
                'sn', 'pg', 'uk', 'lc', 'lcm', 'lr', 'lrm', 'lrp', 'ls'}

local function load(id)
  local v = redis.call('HMGET', jkey(id), unpack(FIELDS))
  local row = {id}
  for i = 1, #FIELDS do row[i + 1] = v[i] end
  return row
end

-- A field that is set (absent and '' both mean "not set").
local function set(v)
  return v and v ~= ''
end

-- The bit of each status in a job's unique states (`us`; jobs_core::UniqueStates).
local BIT = {PENDING = 1, SCHEDULED = 2, RUNNING = 4, COMPLETED = 8, FAILED = 16,
             RETRYING = 32, DEAD_LETTER = 64}
-- PENDING, SCHEDULED, RUNNING, RETRYING: the least a unique job holds its key in.
local ACTIVE_BITS = 39

-- Unique key -> the id of the job holding it (hash `{P}:uniq`).
local UNIQ = K .. ':uniq'

-- After a job's status changed to `status`: it gives up its unique key `uk`
-- unless its states `us` contain that status.
local function release_key(id, status, uk, us)
  if not set(uk) then return end
  local bits = tonumber(us) or ACTIVE_BITS
  local b = BIT[status] or 0
  if math.floor(bits / b) % 2 == 1 then return end
  if redis.call('HGET', UNIQ, uk) == id then
    redis.call('HDEL', UNIQ, uk)
  end
end

-- Running jobs per concurrency key and per sequence key.
local RUN_CONC = K .. ':run:conc'
local RUN_SEQ = K .. ':run:seq'

local function decr(h, f)
  if redis.call('HINCRBY', h, f, -1) <= 0 then
    redis.call('HDEL', h, f)
  end
end

-- A job with concurrency key `lc` / sequence key `ls` stopped RUNNING.
local function left_running(lc, ls)
  if set(lc) then decr(RUN_CONC, lc) end
  if set(ls) then decr(RUN_SEQ, ls) end
end

-- Unfinished jobs of a sequence key: zset `{P}:sq:<key>`, score the enqueue
-- sequence, so its first member is the oldest.
local function join_sequence(id, ls, sq)
  if set(ls) then
    redis.call('ZADD', K .. ':sq:' .. ls, n2s(tonumber(sq) or 0), id)
  end
end

local function leave_sequence(id, ls)
  if set(ls) then
    redis.call('ZREM', K .. ':sq:' .. ls, id)
  end
end

-- Starts within the window `per_us` ending at `now` of rate key `rk`
-- (zset `{P}:rate:<key>`, score the start time); older ones are forgotten.
local function window(rk, now, per_us)
  local key = K .. ':rate:' .. rk
  redis.call('ZREMRANGEBYSCORE', key, '-inf', n2s(now - per_us))
  return redis.call('ZCARD', key)
end

-- Logs a start of rate key `rk` at `now` (member unique per job), kept as
-- long as the window needs it.
local function log_start(rk, now, per_us, id)
  local key = K .. ':rate:' .. rk
  redis.call('ZADD', key, n2s(now), n2s(now) .. ':' .. id)
  redis.call('PEXPIRE', key, math.floor(per_us / 1000) + 1000)
end

local counts = {}
local count_keys = {}
local function count(status, q, d)
  status = status or '?'
  q = q or '?'
  local by_q = count_keys[status]
  if not by_q then by_q = {} count_keys[status] = by_q end
  local k = by_q[q]
  if not k then k = status .. ' ' .. q by_q[q] = k end
  counts[k] = (counts[k] or 0) + d
end
-- A field that comes down to zero goes, so `{P}:counts` holds only the
-- (status, queue) pairs that have jobs and `counts()` (one HGETALL) stays
-- as small as they are, however many queues came and went.
--
-- The same figures keep the throughput history: `{P}:tp:<minute>` (the
-- minute's start, Unix seconds, by Redis's clock) holds per queue how many
-- jobs became COMPLETED, FAILED, DEAD_LETTER and RETRYING in it (fields
-- `c <queue>`, `f <queue>`, `d <queue>`, `r <queue>`). No script moves jobs
-- both into and out of one of these statuses, so a positive net figure is the
-- number of moves into it. A hash expires TP_TTL after its first field was
-- made (a little over a day); only then does the script pay an EXPIRE.
local TP_FIELD = {COMPLETED = 'c', FAILED = 'f', DEAD_LETTER = 'd', RETRYING = 'r'}
local TP_TTL = 90000
-- Moves into a status of jobs deleted in the same step (record's kind E):
-- throughput history only, `"<field> <queue>"` -> number.
local tp_only = {}
local function count_throughput(status, q, d)
  local k = TP_FIELD[status] .. ' ' .. (q or '?')
  tp_only[k] = (tp_only[k] or 0) + d
end
local function flush_counts()
  local tp
  local function add_tp(field, d)
    if not tp then
      local t = redis.call('TIME')
      tp = K .. ':tp:' .. n2s(tonumber(t[1]) - tonumber(t[1]) % 60)
    end
    if redis.call('HINCRBY', tp, field, d) == d then
      redis.call('EXPIRE', tp, TP_TTL)
    end
  end
  for status, by_q in pairs(count_keys) do
    local f = TP_FIELD[status]
    for q, k in pairs(by_q) do
      local d = counts[k]
      if d ~= 0 and redis.call('HINCRBY', K .. ':counts', k, d) == 0 then
        redis.call('HDEL', K .. ':counts', k)
      end
      if f and d > 0 then
        local extra = tp_only[f .. ' ' .. q]
        if extra then tp_only[f .. ' ' .. q] = nil end
        add_tp(f .. ' ' .. q, d + (extra or 0))
      end
    end
  end
  for field, d in pairs(tp_only) do add_tp(field, d) end
end

local woken = {}
local function wake(q)
  woken[q or '?'] = true
end
local function flush_wake()
  for q in pairs(woken) do
    redis.call('PUBLISH', K .. ':wake', q)
  end
end

-- Tells handles awaiting them that jobs finished: one PUBLISH on
-- `{P}:finished` per call, naming the ids of `done` (score, id pairs, as
-- added to `{P}:done`), none if it is empty.
local function flush_finished(done)
  if #done == 0 then return end
  local ids = {}
  for i = 2, #done, 2 do ids[#ids + 1] = done[i] end
  redis.call('PUBLISH', K .. ':finished', table.concat(ids, ' '))
end

-- ZADD/ZREM of many members, unpacking at most 1,000 arguments at a time
-- (Lua's C stack takes about 8,000).
local function bulk(cmd, key, args)
  local n = #args
  local i = 1
  while i <= n do
    local j = i + 999
    if j > n then j = n end
    redis.call(cmd, key, unpack(args, i, j))
    i = j + 1
  end
end

-- The ready set of queue `q` for a due job: jobs with limits (`limited`)
-- wait in a lane of their own, `{P}:lready:<q>`, so that jobs a limit holds
-- back never stand in front of the others; the claim merges the two lanes in
-- claim order.
local function ready_key(q, limited)
  if limited then return K .. ':lready:' .. q end
  return K .. ':ready:' .. q
end

-- Whether a job with these limit fields (concurrency, rate, sequence key)
-- has limits.
local function has_limits(lc, lr, ls)
  return set(lc) or set(lr) or set(ls)
end

-- Every waiting job of every queue, score 0 and the member of its ready or
-- delayed set, so the set sorts by run_at, then enqueue order: the "due
-- soonest" order of `list_page`. It follows the ready and delayed sets
-- everywhere a job joins or leaves them as a waiting job (a promotion from
-- delayed to ready changes neither its member nor its waiting).
local DUE = K .. ':due'

-- The ready set of queue `q` (score -priority) or its delayed set (score run_at).
local function enqueue_member(q, pr, ra, sq, id, now, limited)
  local m = member(ra, sq, id)
  redis.call('ZADD', DUE, 0, m)
  ra = tonumber(ra) or 0
  if ra > now then
    redis.call('ZADD', K .. ':delayed:' .. q, n2s(ra), m)
  else
    redis.call('ZADD', ready_key(q, limited), n2s(-(tonumber(pr) or 0)), m)
  end
end

local function unindex(q, ra, sq, id)
  local m = member(ra, sq, id)
  redis.call('ZREM', K .. ':ready:' .. q, m)
  redis.call('ZREM', K .. ':lready:' .. q, m)
  redis.call('ZREM', K .. ':delayed:' .. q, m)
  redis.call('ZREM', DUE, m)
end

-- RFC 3339 UTC from microseconds since the epoch (for error messages).
local function iso(us)
  local s = math.floor(us / 1000000)
  local frac = us - s * 1000000
  local days = math.floor(s / 86400)
  local rem = s - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06dZ', y, m, d,
    math.floor(rem / 3600), math.floor((rem % 3600) / 60), rem % 60, frac)
end

-- How many failed attempts field `er` keeps (jobs_core::MAX_ERROR_HISTORY; a
-- Rust test checks that the two agree).
local MAX_ERRORS = 20

-- Appends one failed attempt to the job's history (field `er`: JSON objects
-- joined by commas; the Rust side wraps them in brackets), keeping the last
-- MAX_ERRORS, and counts it in `ec`.
--
-- Every entry starts with `{"a":`, and no entry holds that text anywhere else
-- (inside a JSON string every `"` is escaped), so entries are found by a
-- plain search, without decoding JSON. The work is proportional to the stored
-- history, which is at most MAX_ERRORS entries; a job written by a version that
-- did not cap its history is cut down once, on its next failure.
--
-- A job stored before `ec` existed counts the entries of its history instead.
local function push_error(key, attempt, rc, now, msg, retryable, worker)
  local e = '{"a":' .. n2s(tonumber(attempt) or 0) .. ',"r":' .. n2s(tonumber(rc) or 0)
    .. ',"t":' .. n2s(now) .. ',"m":' .. cjson.encode(msg)
    .. ',"y":' .. (retryable and 'true' or 'false')
  if worker and worker ~= '' then
    e = e .. ',"w":' .. cjson.encode(worker)
  end
  e = e .. '}'
  local cur = redis.call('HMGET', key, 'er', 'ec')
  local old = cur[1]
  local n = 0
  if old and old ~= '' then
    local starts = {}
    local i = 1
    while true do
      local at = string.find(old, '{"a":', i, true)
      if not at then break end
      n = n + 1
      starts[n] = at
      i = at + 5
    end
    if n >= MAX_ERRORS then
      old = string.sub(old, starts[n - MAX_ERRORS + 2])
    end
    e = old .. ',' .. e
  end
  local ec = (tonumber(cur[2]) or n) + 1
  redis.call('HSET', key, 'er', e, 'em', msg, 'ec', n2s(ec))
end

local TERMINAL = {COMPLETED = true, FAILED = true, DEAD_LETTER = true}
local WAITING = {PENDING = true, SCHEDULED = true, RETRYING = true}

-- Deletes a job that is not RUNNING and everything pointing at it: its
-- entry in the ready/delayed, `all` and `done` sets, its unique key, its
-- place in its sequence, its count, its settled workflow edges.
local function purge_job(id)
  local key = jkey(id)
  local cur = redis.call('HMGET', key, 's', 'q', 'ra', 'sq', 'uk', 'ls')
  local q = cur[2] or '?'
  if WAITING[cur[1]] then unindex(q, cur[3], cur[4], id) end
  if set(cur[5]) and redis.call('HGET', UNIQ, cur[5]) == id then
    redis.call('HDEL', UNIQ, cur[5])
  end
  if set(cur[6]) and redis.call('ZREM', K .. ':sq:' .. cur[6], id) == 1 then
    -- It was waiting in its sequence: the next job of the key may go.
    wake(q)
  end
  count(cur[1], q, -1)
  redis.call('DEL', key, K .. ':settled:' .. id)
  redis.call('ZREM', K .. ':all', id)
  redis.call('ZREM', K .. ':done', id)
end
