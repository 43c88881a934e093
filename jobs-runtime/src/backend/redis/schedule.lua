-- Periodic schedules' states: hash `{P}:sched` (name -> JSON) and hash
-- `{P}:sched:at` (name -> when it was last saved, us, the server's clock).
-- ARGV: 'save', name, state | 'list'. 'list' returns {name, state, at} each.
local S = K .. ':sched'
if ARGV[1] == 'save' then
  redis.call('HSET', S, ARGV[2], ARGV[3])
  redis.call('HSET', S .. ':at', ARGV[2], n2s(now_us()))
  return 0
end
local all = redis.call('HGETALL', S)
local out = {}
for i = 1, #all, 2 do
  out[#out + 1] = {all[i], all[i + 1], redis.call('HGET', S .. ':at', all[i])}
end
return out
