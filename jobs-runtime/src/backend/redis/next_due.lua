-- Read only: microseconds until the earliest delayed job of the given queues
-- comes due (0 if one already is), or -1 if none is waiting. Paused queues
-- are left out.
-- ARGV: queues...
local now = now_us()
local best = -1
for _, q in ipairs(ARGV) do
  local first = {}
  if redis.call('SISMEMBER', K .. ':paused', q) == 0 then
    first = redis.call('ZRANGE', K .. ':delayed:' .. q, 0, 0, 'WITHSCORES')
  end
  if #first > 0 then
    local d = tonumber(first[2]) - now
    if d < 0 then d = 0 end
    if best < 0 or d < best then best = d end
  end
end
return best
