-- Puts a FAILED or DEAD_LETTER job back to PENDING, due now, retry_count 0,
-- no longer marked cancelled (its error history and count stay). A unique
-- job takes its key again — refused if another job holds it meanwhile — and
-- a job of a sequence takes its old place in it again.
-- ARGV: id. Returns {'ok', row}, {'missing'}, {'state', status} or
-- {'taken', holder id}.
local id = ARGV[1]
local key = jkey(id)
if redis.call('EXISTS', key) == 0 then return {'missing'} end
local cur = redis.call('HMGET', key, 's', 'q', 'pr', 'sq', 'uk', 'ls')
if cur[1] ~= 'FAILED' and cur[1] ~= 'DEAD_LETTER' then return {'state', cur[1] or '?'} end
if set(cur[5]) then
  local holder = redis.call('HGET', UNIQ, cur[5])
  if holder and holder ~= id and redis.call('EXISTS', jkey(holder)) == 1 then
    return {'taken', holder}
  end
  redis.call('HSET', UNIQ, cur[5], id)
end
local now = now_us()
local q = cur[2] or '?'
redis.call('HSET', key, 's', 'PENDING', 'rc', '0', 'ra', n2s(now))
redis.call('HDEL', key, 'fa', 'cx')
redis.call('ZREM', K .. ':done', id)
enqueue_member(q, cur[3], now, cur[4], id, now)
join_sequence(id, cur[6], cur[4])
count(cur[1], q, -1)
count('PENDING', q, 1)
wake(q)
flush_counts()
flush_wake()
return {'ok', load(id)}
