-- Extends the leases of jobs still RUNNING under the given lease token and
-- worker. The token, not the attempt number, tells leases apart: a job
-- written before tokens existed has none, so no fence matches it (its lease
-- can only expire).
-- ARGV: worker, lease_us, then pairs of id, token (16 hex digits).
-- Returns {lost ids, ids still held whose cancellation was requested}.
local worker = ARGV[1]
local lu = n2s(now_us() + tonumber(ARGV[2]))
local lost = {}
local cancel = {}
local leases = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local key = jkey(id)
  local cur = redis.call('HMGET', key, 's', 'lt', 'lb', 'cx')
  if cur[1] == 'RUNNING' and cur[2] == ARGV[i + 1] and cur[3] == worker then
    redis.call('HSET', key, 'lu', lu)
    leases[#leases + 1] = lu
    leases[#leases + 1] = id
    if set(cur[4]) then cancel[#cancel + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
bulk('ZADD', K .. ':leases', leases)
return {lost, cancel}
