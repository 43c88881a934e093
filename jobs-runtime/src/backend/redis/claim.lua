-- Claims up to `limit` due jobs: queue list order, then priority descending,
-- then run_at, then enqueue order. Due delayed jobs of each queue are promoted
-- first, at most PROMOTE of them per queue and call.
-- ARGV: worker, limit, lease_us, promote, n_queues, queues...
-- Returns one row per job: {id, FIELDS...} after the claim.
local worker = ARGV[1]
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local promote = tonumber(ARGV[4])
local nq = tonumber(ARGV[5])
local now = now_us()
local lu = n2s(now + lease)
local now_s = n2s(now)
local out = {}
local leases = {}
for qi = 1, nq do
  if #out >= limit then break end
  local q = ARGV[5 + qi]
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
  while #out < limit and rounds < 4 do
    rounds = rounds + 1
    local popped = redis.call('ZPOPMIN', rk, limit - #out)
    if #popped == 0 then break end
    for i = 1, #popped, 2 do
      local id = string.sub(popped[i], ID_AT)
      local key = jkey(id)
      local cur = redis.call('HMGET', key, 's', 'at', 'q')
      local st = cur[1]
      -- A hash without a status is corrupt: claim it anyway so the worker
      -- reports it as that job's error instead of it vanishing.
      if WAITING[st] or (not st and redis.call('EXISTS', key) == 1) then
        local at = (tonumber(cur[2]) or 0) + 1
        redis.call('HSET', key, 's', 'RUNNING', 'at', n2s(at), 'sa', now_s, 'lb', worker, 'lu', lu)
        leases[#leases + 1] = lu
        leases[#leases + 1] = id
        count(st, cur[3] or q, -1)
        count('RUNNING', cur[3] or q, 1)
        out[#out + 1] = load(id)
      end
    end
  end
end
bulk('ZADD', K .. ':leases', leases)
flush_counts()
return out
