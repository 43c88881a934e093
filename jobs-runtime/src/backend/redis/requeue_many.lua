-- One batch of a bulk requeue: of the next `scan` jobs in enqueue order
-- after sequence `after`, those in status `status` (of queue `queue` and job
-- type `type` unless ''), at most `want`, requeued as requeue.lua does each.
-- A unique job whose key another job holds now is left as it is and
-- reported; of two with one key, the first takes it.
-- ARGV: status, queue, type, after, scan, want.
-- Returns {examined, last sequence examined ('' if none), requeued, {skipped ids}}.
local status, fq, ft = ARGV[1], ARGV[2], ARGV[3]
local scan, want = tonumber(ARGV[5]), tonumber(ARGV[6])
local ids = redis.call('ZRANGEBYSCORE', K .. ':all', '(' .. ARGV[4], '+inf',
  'WITHSCORES', 'LIMIT', 0, scan)
local now = now_us()
local examined, requeued, last = 0, 0, ''
local skipped = {}
for i = 1, #ids, 2 do
  if requeued >= want then break end
  local id = ids[i]
  examined = examined + 1
  last = ids[i + 1]
  local key = jkey(id)
  local cur = redis.call('HMGET', key, 's', 'q', 'pr', 'sq', 'uk', 'ls', 'lc', 'lr', 't')
  if cur[1] == status and (fq == '' or cur[2] == fq) and (ft == '' or cur[9] == ft) then
    local taken = false
    if set(cur[5]) then
      local holder = redis.call('HGET', UNIQ, cur[5])
      if holder and holder ~= id and redis.call('EXISTS', jkey(holder)) == 1 then
        taken = true
      else
        redis.call('HSET', UNIQ, cur[5], id)
      end
    end
    if taken then
      skipped[#skipped + 1] = id
    else
      local q = cur[2] or '?'
      redis.call('HSET', key, 's', 'PENDING', 'rc', '0', 'ra', n2s(now))
      redis.call('HDEL', key, 'fa', 'cx')
      redis.call('ZREM', K .. ':done', id)
      enqueue_member(q, cur[3], now, cur[4], id, now, has_limits(cur[7], cur[8], cur[6]))
      join_sequence(id, cur[6], cur[4])
      count(cur[1], q, -1)
      count('PENDING', q, 1)
      wake(q)
      requeued = requeued + 1
    end
  end
end
flush_counts()
flush_wake()
return {examined, last, requeued, skipped}
