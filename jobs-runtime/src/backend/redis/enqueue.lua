-- Stores a chunk of new jobs: all of them or none.
-- ARGV: abort_flag ('' = single chunk), n_check, ids to check for duplicates...,
--       n, then per job: id, queue, type, payload, priority,
--       max_retries, run_at_us ('' = none), delay_us ('' = none), timeout_ms
--       ('' = none), metadata ('' = none), extras: '' for none, else
--       letters saying which follow: 'u' then 4 values (unique key, its
--       period in seconds or '', its states as bits, replace '1' or ''), 'l'
--       then 6 values (concurrency key, its max, rate key, its max, its
--       window in ms, sequence key; '' for each it has not). A plain job
--       costs one empty value for all of it.
-- Due time: run_at if given, else now + delay, else now (now = server TIME).
--
-- A unique job is stored only if no job holds its key (with a period, the
-- key plus ':' and the number of whole periods since the epoch by the
-- server's clock) in hash `{P}:uniq`; the check and the take are this one
-- script, so two producers can never both take a key. Otherwise it is a
-- duplicate of the holder, or in replace mode a waiting holder takes its
-- payload, options and due time. Jobs of the batch are taken in order, so a
-- later one with an earlier one's key is its duplicate.
--
-- Returns {'ok'} when every job was stored, else {'ok', per job: ''
-- (stored), 'd' .. holder id (duplicate) or 'r' .. holder id (replaced)};
-- {'dup', id} or {'aborted'} (an earlier chunk found a duplicate id).
local flag = ARGV[1]
local flag_key = K .. ':abort:' .. flag
if flag ~= '' and redis.call('EXISTS', flag_key) == 1 then
  return {'aborted'}
end
local n_check = tonumber(ARGV[2])
local base = 3 + n_check
local n = tonumber(ARGV[base])
-- One EXISTS over many keys per 1,000 ids; only on a hit look for which one.
local function first_existing(ids)
  for i = 1, #ids, 1000 do
    local j = i + 999
    if j > #ids then j = #ids end
    if redis.call('EXISTS', unpack(ids, i, j)) > 0 then
      for k = i, j do
        if redis.call('EXISTS', ids[k]) == 1 then return string.sub(ids[k], #K + 4) end
      end
    end
  end
  return nil
end
-- Where each job's values start (jobs with extras take more).
local at = {}
do
  local b = base + 1
  for i = 1, n do
    at[i] = b
    local ext = ARGV[b + 10]
    b = b + 11
    if ext ~= '' then
      if string.find(ext, 'u', 1, true) then b = b + 4 end
      if string.find(ext, 'l', 1, true) then b = b + 6 end
    end
  end
end
local keys = {}
for i = 3, 2 + n_check do keys[#keys + 1] = jkey(ARGV[i]) end
for i = 1, n do keys[#keys + 1] = jkey(ARGV[at[i]]) end
local dup = first_existing(keys)
if dup then
  if flag ~= '' then
    redis.call('SET', flag_key, dup, 'PX', 60000)
  end
  return {'dup', dup}
end

local now = now_us()
local now_s = n2s(now)
local now_secs = math.floor(now / 1000000)
local all = {}
local ready = {}
local delayed = {}
local due = {}
local function flush_index()
  bulk('ZADD', K .. ':all', all)
  bulk('ZADD', DUE, due)
  for rk, args in pairs(ready) do bulk('ZADD', rk, args) end
  for q, args in pairs(delayed) do bulk('ZADD', K .. ':delayed:' .. q, args) end
  all, due, ready, delayed = {}, {}, {}, {}
end
-- Sequence numbers for the whole chunk at once (a duplicate leaves a gap).
local seq0 = redis.call('INCRBY', K .. ':seq', n) - n
local results = {'ok'}
local all_stored = true

-- Debounce: the waiting job `holder` takes the new job's payload, metadata,
-- priority, retries, timeout and due time (a RETRYING one stays RETRYING).
local function replace(holder, p, pr, mr, to, md, run_at, ra_s)
  flush_index()
  local hk = jkey(holder)
  local cur = redis.call('HMGET', hk, 's', 'q', 'ra', 'sq', 'lc', 'lr', 'ls')
  local st, q = cur[1], cur[2] or '?'
  unindex(q, cur[3], cur[4], holder)
  local status = st
  if st ~= 'RETRYING' then
    status = 'PENDING'
    if run_at > now then status = 'SCHEDULED' end
  end
  redis.call('HSET', hk, 'p', p, 'pr', pr, 'mr', mr, 'ra', ra_s, 's', status, 'md', md, 'to', to)
  enqueue_member(q, pr, run_at, cur[4], holder, now, has_limits(cur[5], cur[6], cur[7]))
  count(st, q, -1)
  count(status, q, 1)
  wake(q)
end

for i = 0, n - 1 do
  local b = at[i + 1]
  local id, q, ty, p, pr, mr, ra, dl, to, md, ext =
    ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], ARGV[b + 6],
    ARGV[b + 7], ARGV[b + 8], ARGV[b + 9], ARGV[b + 10]
  local uk, up, us, ur = '', '', '', ''
  local lc, lcm, lr, lrm, lrp, ls = '', '', '', '', '', ''
  if ext ~= '' then
    local e = b + 11
    if string.find(ext, 'u', 1, true) then
      uk, up, us, ur = ARGV[e], ARGV[e + 1], ARGV[e + 2], ARGV[e + 3]
      e = e + 4
    end
    if string.find(ext, 'l', 1, true) then
      lc, lcm, lr, lrm, lrp, ls = ARGV[e], ARGV[e + 1], ARGV[e + 2], ARGV[e + 3], ARGV[e + 4],
        ARGV[e + 5]
    end
  end
  -- A delay is at most MAX_DELAY (about 100 years), so now + delay stays an
  -- exact integer in a double (below 2^53 us) until about the year 2155.
  local run_at = now
  local ra_s = now_s
  if ra ~= '' then
    run_at = tonumber(ra)
    ra_s = ra
  elseif dl ~= '' then
    run_at = now + tonumber(dl)
    ra_s = n2s(run_at)
  end
  local holder = nil
  if uk ~= '' then
    if up ~= '' then
      uk = uk .. ':' .. n2s(math.floor(now_secs / tonumber(up)))
    end
    holder = redis.call('HGET', UNIQ, uk)
  end
  local hs = holder and redis.call('HGET', jkey(holder), 's')
  -- A key whose holder is gone (its hash deleted by hand) is free.
  if holder and not hs then holder = nil end
  if holder then
    if ur == '1' and WAITING[hs] then
      replace(holder, p, pr, mr, to, md, run_at, ra_s)
      results[#results + 1] = 'r' .. holder
    else
      results[#results + 1] = 'd' .. holder
    end
    all_stored = false
  else
    local sq = seq0 + i + 1
    local status = 'PENDING'
    if run_at > now then status = 'SCHEDULED' end
    local sq_s = n2s(sq)
    -- retry_count, attempt, error_count and snoozes start absent, read as 0.
    local f = {'q', q, 't', ty, 'p', p, 's', status, 'pr', pr, 'mr', mr, 'ra', ra_s,
               'ca', now_s, 'sq', sq_s}
    if md ~= '' then
      f[#f + 1] = 'md'
      f[#f + 1] = md
    end
    if to ~= '' then
      f[#f + 1] = 'to'
      f[#f + 1] = to
    end
    if ext ~= '' then
      -- Unique or limited: outcomes have keys to give up and slots to free.
      f[#f + 1] = 'x'
      f[#f + 1] = '1'
      if uk ~= '' then
        f[#f + 1] = 'uk'
        f[#f + 1] = uk
        f[#f + 1] = 'us'
        f[#f + 1] = us
        redis.call('HSET', UNIQ, uk, id)
      end
      local extra = {'lc', lc, 'lcm', lcm, 'lr', lr, 'lrm', lrm, 'lrp', lrp, 'ls', ls}
      for k = 1, #extra, 2 do
        if extra[k + 1] ~= '' then
          f[#f + 1] = extra[k]
          f[#f + 1] = extra[k + 1]
        end
      end
    end
    join_sequence(id, ls, sq)
    redis.call('HSET', keys[n_check + i + 1], unpack(f))
    all[#all + 1] = sq_s
    all[#all + 1] = id
    local m = member(run_at, sq, id)
    due[#due + 1] = 0
    due[#due + 1] = m
    if status == 'SCHEDULED' then
      local d = delayed[q]
      if not d then d = {} delayed[q] = d end
      d[#d + 1] = ra_s
      d[#d + 1] = m
    else
      local rk = ready_key(q, ext ~= '' and has_limits(lc, lr, ls))
      local r = ready[rk]
      if not r then r = {} ready[rk] = r end
      r[#r + 1] = n2s(-(tonumber(pr) or 0))
      r[#r + 1] = m
    end
    count(status, q, 1)
    wake(q)
    results[#results + 1] = ''
  end
end
flush_index()
flush_counts()
flush_wake()
if all_stored then return {'ok'} end
return results
