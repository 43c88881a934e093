-- Claims up to `limit` due jobs: queue list order, then priority descending,
-- then run_at, then enqueue order. Due delayed jobs of each queue are promoted
-- first, at most PROMOTE of them per queue and call.
-- ARGV: worker, lease token (16 hex digits, fresh per call), limit, lease_us,
--       promote, n_queues, queues...
-- Returns one flat array: per claimed job, its id and the fields of FIELDS in
-- order (absent ones nil), as they are after the claim (WIDTH values per job).
local worker = ARGV[1]
local token = ARGV[2]
local limit = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local promote = tonumber(ARGV[5])
local nq = tonumber(ARGV[6])
local QUEUES = 6
local now = now_us()
local lu = n2s(now + lease)
local now_s = n2s(now)
local out = {}
local n_out = 0
local claimed = 0
local leases = {}
-- Reply position of each hash field within a job's row (the id is first).
local POS = {q = 2, t = 3, p = 4, s = 5, pr = 6, rc = 7, mr = 8, ra = 9, ca = 10, sa = 11,
             fa = 12, em = 13, er = 14, rd = 15, md = 16, lb = 17, lu = 18, at = 19,
             lt = 20, ec = 21, cx = 22, to = 23}
local WIDTH = 23
for qi = 1, nq do
  if claimed >= limit then break end
  local q = ARGV[QUEUES + qi]
  local rk = K .. ':ready:' .. q
  local dk = K .. ':delayed:' .. q
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
  -- Stale entries (cancelled or vanished jobs) are dropped as they come up;
  -- a few rounds at most, so the work stays bounded.
  local rounds = 0
  while claimed < limit and rounds < 4 do
    rounds = rounds + 1
    local popped = redis.call('ZPOPMIN', rk, limit - claimed)
    if #popped == 0 then break end
    for i = 1, #popped, 2 do
      local id = string.sub(popped[i], ID_AT)
      local key = jkey(id)
      -- One pass over the hash (cheaper than naming every field, most of
      -- them unset on a fresh job).
      local pairs_ = redis.call('HGETALL', key)
      local st, at, q_ = nil, 0, nil
      for k = 1, #pairs_, 2 do
        local f = pairs_[k]
        if f == 's' then st = pairs_[k + 1]
        elseif f == 'at' then at = tonumber(pairs_[k + 1]) or 0
        elseif f == 'q' then q_ = pairs_[k + 1] end
      end
      -- A hash without a status is corrupt: claim it anyway so the worker
      -- reports it as that job's error instead of it vanishing.
      if WAITING[st] or (not st and #pairs_ > 0) then
        local at_s = n2s(at + 1)
        redis.call('HSET', key, 's', 'RUNNING', 'at', at_s, 'sa', now_s, 'lb', worker, 'lu', lu,
          'lt', token)
        leases[#leases + 1] = lu
        leases[#leases + 1] = id
        count(st, q_ or q, -1)
        count('RUNNING', q_ or q, 1)
        claimed = claimed + 1
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
bulk('ZADD', K .. ':leases', leases)
flush_counts()
return out
