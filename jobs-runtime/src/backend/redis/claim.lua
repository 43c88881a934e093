-- Claims up to `limit` due jobs: queue list order, then priority descending,
-- then run_at, then enqueue order. Paused queues are skipped. Due delayed
-- jobs of each queue are promoted first, at most PROMOTE of them per queue
-- and call.
-- ARGV: worker, lease token (16 hex digits, fresh per call), limit, lease_us,
--       promote, scan, n_queues, then per queue (QARGS values): name, take,
--       global, rate max, rate window (us) — '' for a limit it has not.
-- Returns {limited (0/1), then one flat array: per claimed job, its id and
-- the fields of FIELDS in order (absent ones nil), as they are after the
-- claim (WIDTH values per job)}.
--
-- Limits. A queue's limits cap how many of its jobs this call takes (its
-- `take`; its `global` cap minus its RUNNING jobs; its `rate` max minus the
-- starts in the window). A job's own limits are checked when it comes up:
-- at most `lcm` RUNNING per concurrency key `lc` (hash `{P}:run:conc`), at
-- most `lrm` starts per window `lrp` ms per rate key `lr` (zset
-- `{P}:rate:<key>`), and for a sequence key `ls` only the first member of
-- `{P}:sq:<key>` while none of the key runs (hash `{P}:run:seq`). A job held
-- back goes back to the ready set unchanged, and the scan goes on past it,
-- so it does not block later jobs; at most `scan` candidates are looked at
-- per queue and call (then `limited` is set and the next call looks again).
-- All of this is this one script, so two claimers never both take the last
-- slot. A job without limits in a queue without limits costs what it always
-- did: one ZPOPMIN per batch, one HGETALL and one HSET per job.
local worker = ARGV[1]
local token = ARGV[2]
local limit = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local promote = tonumber(ARGV[5])
local scan = tonumber(ARGV[6])
local nq = tonumber(ARGV[7])
local QUEUES = 7
local QARGS = 5
local now = now_us()
local lu = n2s(now + lease)
local now_s = n2s(now)
local out = {0}
local n_out = 1
local claimed = 0
local leases = {}
local limited = false
-- Reply position of each hash field within a job's row (the id is first),
-- shifted by the leading `limited` flag.
local POS = {q = 2, t = 3, p = 4, s = 5, pr = 6, rc = 7, mr = 8, ra = 9, ca = 10, sa = 11,
             fa = 12, em = 13, er = 14, rd = 15, md = 16, lb = 17, lu = 18, at = 19,
             lt = 20, ec = 21, cx = 22, to = 23, sn = 24, pg = 25, uk = 26, lc = 27,
             lcm = 28, lr = 29, lrm = 30, lrp = 31, ls = 32}
local WIDTH = 32
-- The fields a claim reads from a job's hash, by slot.
local READ = {s = 1, at = 2, q = 3, lc = 4, lcm = 5, lr = 6, lrm = 7, lrp = 8, ls = 9}

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

for qi = 1, nq do
  if claimed >= limit then break end
  local b = QUEUES + (qi - 1) * QARGS
  local q = ARGV[b + 1]
  local q_take, q_global, q_rmax, q_rper = ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local rk = K .. ':ready:' .. q
  local dk = K .. ':delayed:' .. q
  if redis.call('SISMEMBER', K .. ':paused', q) == 0 then
    local due = redis.call('ZRANGEBYSCORE', dk, '-inf', now_s, 'LIMIT', 0, promote)
    if #due > 0 then
      local args = {}
      for _, m in ipairs(due) do
        local pr = tonumber(redis.call('HGET', jkey(string.sub(m, ID_AT)), 'pr')) or 0
        args[#args + 1] = n2s(-pr)
        args[#args + 1] = m
      end
      bulk('ZADD', rk, args)
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
      cap_to(tonumber(q_global) - running)
    end
    -- jobs_core::queue_rate_key (a Rust test checks that the two agree).
    local q_rate_key = 'queue:' .. q
    if q_rmax ~= '' then
      cap_to(tonumber(q_rmax) - window(q_rate_key, now, tonumber(q_rper)))
    end
    local taken = 0
    local scanned = 0
    -- Held-back and unexamined members, to go back (score, member pairs).
    local back = {}
    while taken < cap and scanned < scan do
      local want = cap - taken
      -- Past a held-back job, look further per round.
      if #back > 0 and want < 64 then want = 64 end
      if want > scan - scanned then want = scan - scanned end
      local popped = redis.call('ZPOPMIN', rk, want)
      if #popped == 0 then break end
      for i = 1, #popped, 2 do
        if taken >= cap then
          back[#back + 1] = popped[i + 1]
          back[#back + 1] = popped[i]
        else
          scanned = scanned + 1
          local id = string.sub(popped[i], ID_AT)
          local key = jkey(id)
          -- One pass over the hash (cheaper than naming every field, most of
          -- them unset on a fresh job).
          local pairs_ = redis.call('HGETALL', key)
          local v = {}
          for k = 1, #pairs_, 2 do
            local w = READ[pairs_[k]]
            if w then v[w] = pairs_[k + 1] end
          end
          local st, q_ = v[1], v[3]
          local at = tonumber(v[2]) or 0
          local lc, lcm, lr, lrm, lrp, ls = v[4], v[5], v[6], v[7], v[8], v[9]
          -- A hash without a status is corrupt: claim it anyway so the worker
          -- reports it as that job's error instead of it vanishing.
          if WAITING[st] or (not st and #pairs_ > 0) then
            if (lc or lr or ls) and not admits(id, lc, lcm, lr, lrm, lrp, ls) then
              limited = true
              back[#back + 1] = popped[i + 1]
              back[#back + 1] = popped[i]
            else
              if lc then redis.call('HINCRBY', RUN_CONC, lc, 1) end
              if ls then redis.call('HINCRBY', RUN_SEQ, ls, 1) end
              if lr then log_start(lr, now, (tonumber(lrp) or 0) * 1000, id) end
              if q_rmax ~= '' then log_start(q_rate_key, now, tonumber(q_rper), id) end
              local at_s = n2s(at + 1)
              redis.call('HSET', key, 's', 'RUNNING', 'at', at_s, 'sa', now_s, 'lb', worker,
                'lu', lu, 'lt', token)
              leases[#leases + 1] = lu
              leases[#leases + 1] = id
              count(st, q_ or q, -1)
              count('RUNNING', q_ or q, 1)
              claimed = claimed + 1
              taken = taken + 1
              -- The row as it is after the claim: positional, so the client
              -- parses no field names.
              local b = n_out
              out[b + 1] = id
              for k = 2, WIDTH do out[b + k] = false end
              for k = 1, #pairs_, 2 do
                local p = POS[pairs_[k]]
                if p then out[b + p] = pairs_[k + 1] end
              end
              out[b + POS.s] = 'RUNNING'
              out[b + POS.at] = at_s
              out[b + POS.sa] = now_s
              out[b + POS.lb] = worker
              out[b + POS.lu] = lu
              out[b + POS.lt] = token
              n_out = b + WIDTH
            end
          end
        end
      end
    end
    if #back > 0 then bulk('ZADD', rk, back) end
    -- Due jobs left behind by a queue cap or the scan bound.
    if ((capped and taken >= cap) or scanned >= scan) and redis.call('ZCARD', rk) > 0 then
      limited = true
    end
  end
end
bulk('ZADD', K .. ':leases', leases)
flush_counts()
if limited then out[1] = 1 end
return out
