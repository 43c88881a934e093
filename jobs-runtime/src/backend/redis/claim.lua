-- Claims up to `limit` due jobs: queue list order, then priority descending,
-- then run_at, then enqueue order. Paused queues are skipped. Due delayed
-- jobs of each queue are promoted first, at most PROMOTE of them per queue
-- and call.
-- ARGV: worker, lease token (16 hex digits, fresh per call), limit, lease_us,
--       promote, scan, n_queues, then per queue (QARGS values): name, take,
--       global, rate max, rate window (us) — '' for a limit it has not —,
--       and the claimer's jobs of the queue whose outcomes are being
--       recorded, as 'id token id token ...' ('' for none): those still
--       RUNNING under that lease have stopped running, so `global` does not
--       count them.
-- Returns one flat array: limited (0/1), the claim's time and lease end (us),
-- then per claimed job its id, its new attempt number, and its hash as it
-- was before the claim (HGETALL's field, value pairs, passed through as they
-- came). The client knows the rest of what the claim set: RUNNING, started
-- now, locked by it, leased until the lease end under its token.
--
-- Limits. A queue's limits cap how many of its jobs this call takes (its
-- `take`; its `global` cap minus its RUNNING jobs; its `rate` max minus the
-- starts in the window). A job's own limits are checked when it comes up:
-- at most `lcm` RUNNING per concurrency key `lc` (hash `{P}:run:conc`), at
-- most `lrm` starts per window `lrp` ms per rate key `lr` (zset
-- `{P}:rate:<key>`), and for a sequence key `ls` only the first member of
-- `{P}:sq:<key>` while none of the key runs (hash `{P}:run:seq`).
--
-- Due jobs with limits wait in a lane of their own, `{P}:lready:<q>`, which
-- the claim merges with the plain lane `{P}:ready:<q>` in claim order. A job
-- held back stays where it is in its lane and the claim looks past it, so
-- it never blocks later jobs, and jobs without limits never wait behind
-- held-back ones. At most `scan` jobs of the limits lane are looked at per
-- queue and call (then `limited` is set and the next call looks again).
-- All of this is this one script, so two claimers never both take the last
-- slot. While no due job of a queue has limits (its limits lane is empty),
-- its jobs cost what they always did: one ZPOPMIN per batch, one HGETALL
-- and one HSET per job, plus one EXISTS per queue.
local worker = ARGV[1]
local token = ARGV[2]
local limit = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local promote = tonumber(ARGV[5])
local scan = tonumber(ARGV[6])
local nq = tonumber(ARGV[7])
local QUEUES = 7
local QARGS = 6
local now = now_us()
local lu = n2s(now + lease)
local now_s = n2s(now)
local out = {0, now_s, lu}
local n_out = 3
local claimed = 0
local leases = {}
local limited = false
-- The limit fields of a job's hash, by slot.
local LIMIT_FIELDS = {lc = 1, lcm = 2, lr = 3, lrm = 4, lrp = 5, ls = 6}

-- Keys found full during this call (concurrency, rate) or running
-- (sequence): they stay so until the call ends, since a claim only adds
-- running jobs and starts, so later jobs of the key are refused without
-- asking again.
local full_conc, full_rate, busy_seq = {}, {}, {}

-- Whether a job's own limits let it start now.
local function admits(id, lc, lcm, lr, lrm, lrp, ls)
  if lc then
    if full_conc[lc] then return false end
    if (tonumber(redis.call('HGET', RUN_CONC, lc)) or 0) >= (tonumber(lcm) or 1) then
      full_conc[lc] = true
      return false
    end
  end
  if ls then
    if busy_seq[ls] then return false end
    if (tonumber(redis.call('HGET', RUN_SEQ, ls)) or 0) > 0 then
      busy_seq[ls] = true
      return false
    end
    local head = redis.call('ZRANGE', K .. ':sq:' .. ls, 0, 0)
    if head[1] ~= id then return false end
  end
  if lr then
    if full_rate[lr] then return false end
    if window(lr, now, (tonumber(lrp) or 0) * 1000) >= (tonumber(lrm) or 1) then
      full_rate[lr] = true
      return false
    end
  end
  return true
end

-- Considers the due job of ready-set member `m` (queue `q`): takes it
-- (RUNNING under this lease, counted against its limits, its row added to
-- the reply) unless a limit holds it back. Returns 'taken', 'held', or
-- 'stale' (cancelled or vanished: its entry is just dropped).
-- Members of the claimed jobs, to leave the due-order set `{P}:due`.
local taken = {}
local function consider(m, q, q_rate_key, q_rate_per)
  local id = string.sub(m, ID_AT)
  local key = jkey(id)
  -- One pass over the hash (cheaper than naming every field, most of them
  -- unset on a fresh job).
  local pairs_ = redis.call('HGETALL', key)
  local st, at, q_, x
  for k = 1, #pairs_, 2 do
    local f = pairs_[k]
    if f == 's' then st = pairs_[k + 1]
    elseif f == 'at' then at = pairs_[k + 1]
    elseif f == 'q' then q_ = pairs_[k + 1]
    elseif f == 'x' then x = true end
  end
  at = tonumber(at) or 0
  -- Only a job marked `x` (unique, or with limits) has limit fields.
  local lc, lcm, lr, lrm, lrp, ls
  if x then
    local v = {}
    for k = 1, #pairs_, 2 do
      local w = LIMIT_FIELDS[pairs_[k]]
      if w then v[w] = pairs_[k + 1] end
    end
    lc, lcm, lr, lrm, lrp, ls = v[1], v[2], v[3], v[4], v[5], v[6]
  end
  -- A hash without a status is corrupt: claim it anyway so the worker
  -- reports it as that job's error instead of it vanishing.
  if not (WAITING[st] or (not st and #pairs_ > 0)) then return 'stale' end
  if (lc or lr or ls) and not admits(id, lc, lcm, lr, lrm, lrp, ls) then
    limited = true
    return 'held'
  end
  if lc then redis.call('HINCRBY', RUN_CONC, lc, 1) end
  if ls then redis.call('HINCRBY', RUN_SEQ, ls, 1) end
  if lr then log_start(lr, now, (tonumber(lrp) or 0) * 1000, id) end
  if q_rate_key then log_start(q_rate_key, now, q_rate_per, id) end
  taken[#taken + 1] = m
  local at_s = n2s(at + 1)
  redis.call('HSET', key, 's', 'RUNNING', 'at', at_s, 'sa', now_s, 'lb', worker, 'lu', lu,
    'lt', token)
  leases[#leases + 1] = lu
  leases[#leases + 1] = id
  count(st, q_ or q, -1)
  count('RUNNING', q_ or q, 1)
  claimed = claimed + 1
  -- The hash as read, passed through: the client applies the claim's
  -- changes itself (no per-field work here).
  out[n_out + 1] = id
  out[n_out + 2] = at_s
  out[n_out + 3] = pairs_
  n_out = n_out + 3
  return 'taken'
end

for qi = 1, nq do
  if claimed >= limit then break end
  local b = QUEUES + (qi - 1) * QARGS
  local q = ARGV[b + 1]
  local q_take, q_global, q_rmax, q_rper = ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local rk = K .. ':ready:' .. q
  local lrk = K .. ':lready:' .. q
  local dk = K .. ':delayed:' .. q
  if redis.call('SISMEMBER', K .. ':paused', q) == 0 then
    local due = redis.call('ZRANGEBYSCORE', dk, '-inf', now_s, 'LIMIT', 0, promote)
    if #due > 0 then
      local args, largs = {}, {}
      for _, m in ipairs(due) do
        local h = redis.call('HMGET', jkey(string.sub(m, ID_AT)), 'pr', 'lc', 'lr', 'ls')
        local to = args
        if h[2] or h[3] or h[4] then to = largs end
        to[#to + 1] = n2s(-(tonumber(h[1]) or 0))
        to[#to + 1] = m
      end
      bulk('ZADD', rk, args)
      bulk('ZADD', lrk, largs)
      bulk('ZREM', dk, due)
    end
    -- The queue's own caps.
    local cap = limit - claimed
    local capped = false
    local function cap_to(n)
      if n < 0 then n = 0 end
      if n < cap then
        cap = n
        capped = true
      end
    end
    if q_take ~= '' then cap_to(tonumber(q_take)) end
    if q_global ~= '' then
      local running = tonumber(redis.call('HGET', K .. ':counts', 'RUNNING ' .. q)) or 0
      local id = nil
      for w in string.gmatch(ARGV[b + 6], '%S+') do
        if id == nil then
          id = w
        else
          local cur = redis.call('HMGET', jkey(id), 's', 'lt', 'q')
          if cur[1] == 'RUNNING' and cur[2] == w and cur[3] == q then
            running = running - 1
          end
          id = nil
        end
      end
      cap_to(tonumber(q_global) - running)
    end
    -- jobs_core::queue_rate_key (a Rust test checks that the two agree).
    local q_rate_key = 'queue:' .. q
    local q_rate_per = nil
    if q_rmax ~= '' then
      q_rate_per = tonumber(q_rper)
      cap_to(tonumber(q_rmax) - window(q_rate_key, now, q_rate_per))
    else
      q_rate_key = nil
    end
    local start = claimed
    -- Popped from the plain lane and not taken, to go back (score, member).
    local back = {}
    -- The plain lane: popped in batches. Its jobs have no limits, so they
    -- are only ever skipped when stale; `seen` bounds that too.
    local abuf, ai, a_done, seen = {}, 1, false, 0
    -- The lane of jobs with limits: looked at in place, by rank, past the
    -- ones held back (which stay where they are), at most `scan` of them.
    local l_done = redis.call('EXISTS', lrk) == 0
    local held, scanned = 0, 0
    local bm, bs = nil, nil
    local merge = not l_done
    if not merge then
      -- No due job with limits: the plain lane alone, as before limits.
      while claimed - start < cap and seen < scan do
        local want = cap - (claimed - start)
        if want > scan - seen then want = scan - seen end
        local popped = redis.call('ZPOPMIN', rk, want)
        if #popped == 0 then break end
        for i = 1, #popped, 2 do
          seen = seen + 1
          if consider(popped[i], q, q_rate_key, q_rate_per) == 'held' then
            back[#back + 1] = popped[i + 1]
            back[#back + 1] = popped[i]
          end
        end
      end
    end
    while merge and claimed - start < cap do
      if ai > #abuf and not a_done then
        if seen >= scan then
          a_done = true
        else
          local want = cap - (claimed - start)
          if want > scan - seen then want = scan - seen end
          abuf = redis.call('ZPOPMIN', rk, want)
          ai = 1
          if #abuf == 0 then a_done = true end
        end
      end
      if not bm and not l_done then
        if scanned >= scan then
          l_done = true
        else
          local r = redis.call('ZRANGE', lrk, held, held, 'WITHSCORES')
          if #r == 0 then
            l_done = true
          else
            bm, bs = r[1], tonumber(r[2])
          end
        end
      end
      local a_ok = ai <= #abuf
      if not a_ok and not bm then break end
      local from_l
      if not a_ok then
        from_l = true
      elseif not bm then
        from_l = false
      else
        -- Claim order: score (-priority), then member (run_at, enqueue order).
        local as = tonumber(abuf[ai + 1])
        from_l = bs < as or (bs == as and bm < abuf[ai])
      end
      if from_l then
        scanned = scanned + 1
        local r = consider(bm, q, q_rate_key, q_rate_per)
        if r == 'held' then
          held = held + 1
        else
          redis.call('ZREM', lrk, bm)
        end
        bm = nil
      else
        local m, sc = abuf[ai], abuf[ai + 1]
        ai = ai + 2
        seen = seen + 1
        if consider(m, q, q_rate_key, q_rate_per) == 'held' then
          -- A job with limits in the plain lane (never put there by this
          -- version): it goes back like any held-back job.
          back[#back + 1] = sc
          back[#back + 1] = m
        end
      end
    end
    for k = ai, #abuf, 2 do
      back[#back + 1] = abuf[k + 1]
      back[#back + 1] = abuf[k]
    end
    if #back > 0 then bulk('ZADD', rk, back) end
    -- Due jobs left behind by a queue cap or the scan bound.
    if scanned >= scan and redis.call('ZCARD', lrk) > held then
      limited = true
    elseif capped and claimed - start >= cap
        and redis.call('ZCARD', rk) + redis.call('ZCARD', lrk) > held then
      limited = true
    end
  end
end
bulk('ZADD', K .. ':leases', leases)
bulk('ZREM', DUE, taken)
flush_counts()
if limited then out[1] = 1 end
return out
