-- Releases held workflow steps: each job that is SCHEDULED with its run_at
-- at or after `held_us` (jobs_core::workflow::held_until) becomes PENDING,
-- due now, as if enqueued now: it moves from its delayed set to its ready
-- set (keeping its enqueue sequence and its place in a sequence key), counts
-- move from SCHEDULED to PENDING, and its queue is woken. It gives up its
-- unique key if its unique states do not hold PENDING. Any other job, or a
-- missing one, is left as it is, so a step is released once.
-- ARGV: held_us, ids... Returns the ids released.
local held = tonumber(ARGV[1])
local now = now_us()
local now_s = n2s(now)
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local key = jkey(id)
  local cur = redis.call('HMGET', key, 's', 'ra', 'q', 'pr', 'sq', 'lc', 'lr', 'ls', 'uk', 'us')
  local ra = tonumber(cur[2])
  if cur[1] == 'SCHEDULED' and ra and ra >= held then
    local q = cur[3] or '?'
    unindex(q, cur[2], cur[5], id)
    redis.call('HSET', key, 's', 'PENDING', 'ra', now_s)
    enqueue_member(q, cur[4], now, cur[5], id, now, has_limits(cur[6], cur[7], cur[8]))
    release_key(id, 'PENDING', cur[9], cur[10])
    count('SCHEDULED', q, -1)
    count('PENDING', q, 1)
    wake(q)
    out[#out + 1] = id
  end
end
flush_counts()
flush_wake()
return out
