-- Records outcomes, each only while its job is RUNNING under the same lease
-- token (a job written before tokens existed has none, so its late outcome
-- is refused: its lease expires and recovery takes it).
-- ARGV: worker, then 7 per update: id, token, kind, delay_us, message,
--       retryable, result.
--   kind C: COMPLETED, result = JSON ('' = none)
--   kind R: RETRYING after delay_us, with message
--   kind F: FAILED, with message; result = JSON ('' = none)
--   kind D: DEAD_LETTER, with message
--   kind L: released back to PENDING, due now (not a failure)
-- Every outcome clears the lease token. Every failure appends to the error
-- history and counts in `ec`.
-- Returns the ids whose update was refused because the lease was lost.
--
-- Nothing below can fail once writing has begun (every value is a string
-- Redis stores as given), so a batch is applied whole.
local worker = ARGV[1]
local now = now_us()
local now_s = n2s(now)
local lost = {}
local gone = {}
local done = {}
for i = 2, #ARGV, 7 do
  local id, token, kind, delay, msg, retryable, result =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local key = jkey(id)
  -- A completion needs no attempt or retry count.
  local cur
  if kind == 'C' then
    cur = redis.call('HMGET', key, 's', 'lt', 'q')
  else
    cur = redis.call('HMGET', key, 's', 'lt', 'q', 'at', 'rc')
  end
  if cur[1] ~= 'RUNNING' or cur[2] ~= token then
    lost[#lost + 1] = id
  else
    local q = cur[3] or '?'
    gone[#gone + 1] = id
    local status
    if kind == 'C' then
      status = 'COMPLETED'
      redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '', 'lt', '', 'rd', result)
      done[#done + 1] = now_s
      done[#done + 1] = id
    elseif kind == 'F' or kind == 'D' then
      push_error(key, cur[4], cur[5], now, msg, retryable == '1', worker)
      if kind == 'F' then
        status = 'FAILED'
        redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '', 'lt', '',
          'rd', result)
      else
        status = 'DEAD_LETTER'
        redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '', 'lt', '')
      end
      done[#done + 1] = now_s
      done[#done + 1] = id
    elseif kind == 'R' then
      status = 'RETRYING'
      push_error(key, cur[4], cur[5], now, msg, retryable == '1', worker)
      -- delay_us is at most MAX_DELAY: exact, see enqueue.lua.
      local ra = now + (tonumber(delay) or 0)
      redis.call('HSET', key, 's', status, 'rc', n2s((tonumber(cur[5]) or 0) + 1), 'ra', n2s(ra),
        'lb', '', 'lu', '', 'lt', '')
      local pos = redis.call('HMGET', key, 'pr', 'sq')
      enqueue_member(q, pos[1], ra, pos[2], id, now)
      wake(q)
    else
      status = 'PENDING'
      redis.call('HSET', key, 's', status, 'ra', now_s, 'lb', '', 'lu', '', 'lt', '')
      local pos = redis.call('HMGET', key, 'pr', 'sq')
      enqueue_member(q, pos[1], now, pos[2], id, now)
      wake(q)
    end
    count('RUNNING', q, -1)
    count(status, q, 1)
  end
end
bulk('ZREM', K .. ':leases', gone)
bulk('ZADD', K .. ':done', done)
flush_counts()
flush_wake()
return lost
