-- Puts a FAILED or DEAD_LETTER job back to PENDING, due now, retry_count 0,
-- no longer marked cancelled (its error history and count stay).
-- ARGV: id. Returns {'ok', row}, {'missing'} or {'state', status}.
local id = ARGV[1]
local key = jkey(id)
if redis.call('EXISTS', key) == 0 then return {'missing'} end
local cur = redis.call('HMGET', key, 's', 'q', 'pr', 'sq')
if cur[1] ~= 'FAILED' and cur[1] ~= 'DEAD_LETTER' then return {'state', cur[1] or '?'} end
local now = now_us()
local q = cur[2] or '?'
redis.call('HSET', key, 's', 'PENDING', 'rc', '0', 'ra', n2s(now))
redis.call('HDEL', key, 'fa', 'cx')
redis.call('ZREM', K .. ':done', id)
enqueue_member(q, cur[3], now, cur[4], id, now)
count(cur[1], q, -1)
count('PENDING', q, 1)
wake(q)
flush_counts()
flush_wake()
return {'ok', load(id)}
