-- The audit log: zset `{P}:audit`, score the entry's time (us), member the
-- append sequence (16 digits) then the entry as JSON, so entries of the same
-- time sort by the order appended.
-- ARGV: 'append', at_us, entry
--     | 'list', before_us ('' = none), offset, limit -> entries, newest first
--     | 'prune', before_us, limit -> how many went.
local A = K .. ':audit'
local op = ARGV[1]
if op == 'append' then
  local seq = redis.call('INCR', A .. ':seq')
  redis.call('ZADD', A, ARGV[2], string.format('%016d', seq) .. ARGV[3])
  return 0
elseif op == 'list' then
  local max = '+inf'
  if ARGV[2] ~= '' then max = '(' .. ARGV[2] end
  local got = redis.call('ZREVRANGEBYSCORE', A, max, '-inf', 'LIMIT', ARGV[3], ARGV[4])
  for i, m in ipairs(got) do got[i] = string.sub(m, 17) end
  return got
end
local old = redis.call('ZRANGEBYSCORE', A, '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[3])
bulk('ZREM', A, old)
return #old
