-- Deletes up to `limit` terminal jobs that finished before `before_us`.
-- ARGV: before_us, limit. Returns {deleted, examined}.
local before = ARGV[1]
local limit = tonumber(ARGV[2])
local cand = redis.call('ZRANGEBYSCORE', K .. ':done', '-inf', '(' .. before, 'LIMIT', 0, limit)
local deleted = 0
local all = {}
for _, id in ipairs(cand) do
  local key = jkey(id)
  local cur = redis.call('HMGET', key, 's', 'q')
  if TERMINAL[cur[1]] then
    redis.call('DEL', key)
    all[#all + 1] = id
    count(cur[1], cur[2], -1)
    deleted = deleted + 1
  end
end
bulk('ZREM', K .. ':done', cand)
bulk('ZREM', K .. ':all', all)
flush_counts()
return {deleted, #cand}
