-- Leadership of roles: key `{P}:lead:<role>` holds the holder's id and
-- expires with its lease (by the server's clock), so at most one holder at
-- a time, and a role whose holder stopped renewing is free once it expired.
-- ARGV: 'try', role, holder, ttl_ms -> 1 if holder holds it now, else 0
--     | 'resign', role, holder -> 0
--     | 'get', role -> {} or {holder, until_us}.
local op = ARGV[1]
local key = K .. ':lead:' .. ARGV[2]
local cur = redis.call('GET', key)
if op == 'try' then
  if cur and cur ~= ARGV[3] then return 0 end
  redis.call('SET', key, ARGV[3], 'PX', ARGV[4])
  return 1
elseif op == 'resign' then
  if cur == ARGV[3] then redis.call('DEL', key) end
  return 0
end
if not cur then return {} end
local ttl = redis.call('PTTL', key)
if ttl < 0 then return {} end
return {cur, n2s(now_us() + ttl * 1000)}
