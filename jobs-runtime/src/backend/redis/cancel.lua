-- Cancels a waiting job: FAILED ("cancelled"), marked cancelled at now (`cx`),
-- never claimed.
-- ARGV: id. Returns {'ok', row...}, {'missing'} or {'state', status}.
local id = ARGV[1]
local key = jkey(id)
if redis.call('EXISTS', key) == 0 then return {'missing'} end
local cur = redis.call('HMGET', key, 's', 'q', 'ra', 'sq')
if not WAITING[cur[1]] then return {'state', cur[1] or '?'} end
local now = now_us()
local q = cur[2] or '?'
unindex(q, cur[3], cur[4], id)
redis.call('HSET', key, 's', 'FAILED', 'em', 'cancelled', 'fa', n2s(now), 'cx', n2s(now))
redis.call('ZADD', K .. ':done', n2s(now), id)
count(cur[1], q, -1)
count('FAILED', q, 1)
flush_counts()
local row = load(id)
return {'ok', row}
