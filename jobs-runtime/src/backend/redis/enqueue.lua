-- Stores a chunk of new jobs: all of them or none.
-- ARGV: abort_flag ('' = single chunk), n_check, ids to check for duplicates...,
--       n, then per job (NARGS values): id, queue, type, payload, priority,
--       max_retries, run_at_us ('' = none), delay_us ('' = none), timeout_ms
--       ('' = none), metadata ('' = none).
-- Due time: run_at if given, else now + delay, else now (now = server TIME).
-- Returns {'ok'}, {'dup', id} or {'aborted'} (an earlier chunk found a duplicate).
local flag = ARGV[1]
local flag_key = K .. ':abort:' .. flag
if flag ~= '' and redis.call('EXISTS', flag_key) == 1 then
  return {'aborted'}
end
local n_check = tonumber(ARGV[2])
local base = 3 + n_check
local n = tonumber(ARGV[base])
local NARGS = 10
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
local keys = {}
for i = 3, 2 + n_check do keys[#keys + 1] = jkey(ARGV[i]) end
for i = 0, n - 1 do keys[#keys + 1] = jkey(ARGV[base + 1 + i * NARGS]) end
local dup = first_existing(keys)
if dup then
  if flag ~= '' then
    redis.call('SET', flag_key, dup, 'PX', 60000)
  end
  return {'dup', dup}
end

local now = now_us()
local last = redis.call('INCRBY', K .. ':seq', n)
local seq0 = last - n
local all = {}
local ready = {}
local delayed = {}
local now_s = n2s(now)
for i = 0, n - 1 do
  local b = base + 1 + i * NARGS
  local id, q, ty, p, pr, mr, ra, dl, to, md =
    ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], ARGV[b + 6],
    ARGV[b + 7], ARGV[b + 8], ARGV[b + 9]
  local sq = seq0 + i + 1
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
  local status = 'PENDING'
  if run_at > now then status = 'SCHEDULED' end
  local sq_s = n2s(sq)
  -- retry_count, attempt and error_count start absent, read as 0.
  local f = {'q', q, 't', ty, 'p', p, 's', status, 'pr', pr, 'mr', mr, 'ra', ra_s, 'ca', now_s,
             'sq', sq_s}
  if md ~= '' then
    f[#f + 1] = 'md'
    f[#f + 1] = md
  end
  if to ~= '' then
    f[#f + 1] = 'to'
    f[#f + 1] = to
  end
  redis.call('HSET', keys[n_check + i + 1], unpack(f))
  all[#all + 1] = sq_s
  all[#all + 1] = id
  local m = member(run_at, sq, id)
  if status == 'SCHEDULED' then
    local d = delayed[q]
    if not d then d = {} delayed[q] = d end
    d[#d + 1] = ra_s
    d[#d + 1] = m
  else
    local r = ready[q]
    if not r then r = {} ready[q] = r end
    r[#r + 1] = n2s(-(tonumber(pr) or 0))
    r[#r + 1] = m
  end
  count(status, q, 1)
  wake(q)
end
bulk('ZADD', K .. ':all', all)
for q, args in pairs(ready) do bulk('ZADD', K .. ':ready:' .. q, args) end
for q, args in pairs(delayed) do bulk('ZADD', K .. ':delayed:' .. q, args) end
flush_counts()
flush_wake()
return {'ok'}
