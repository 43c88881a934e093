-- Records outcomes, each only while its job is RUNNING under the same attempt.
-- ARGV: worker, then 6 per update: id, attempt, kind, delay_us, data, retryable.
--   kind C: COMPLETED, data = result JSON ('' = none)
--   kind R: RETRYING after delay_us, data = error message
--   kind F: FAILED, data = error message
--   kind D: DEAD_LETTER, data = error message
--   kind L: released back to PENDING, due now (not a failure)
-- Returns the ids whose update was refused because the lease was lost.
local worker = ARGV[1]
local now = now_us()
local now_s = n2s(now)
local lost = {}
local gone = {}
local done = {}
for i = 2, #ARGV, 6 do
  local id, attempt, kind, delay, data, retryable =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local key = jkey(id)
  -- A completion needs no retry count.
  local cur
  if kind == 'C' then
    cur = redis.call('HMGET', key, 's', 'at', 'q')
  else
    cur = redis.call('HMGET', key, 's', 'at', 'q', 'rc')
  end
  if cur[1] ~= 'RUNNING' or tonumber(cur[2]) ~= tonumber(attempt) then
    lost[#lost + 1] = id
  else
    local q = cur[3] or '?'
    gone[#gone + 1] = id
    local status
    if kind == 'C' then
      status = 'COMPLETED'
      if data ~= '' then
        redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '', 'rd', data)
      else
        redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '')
      end
      done[#done + 1] = now_s
      done[#done + 1] = id
    elseif kind == 'F' or kind == 'D' then
      status = (kind == 'F') and 'FAILED' or 'DEAD_LETTER'
      push_error(key, cur[2], cur[4], now, data, retryable == '1', worker)
      redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '')
      done[#done + 1] = now_s
      done[#done + 1] = id
    elseif kind == 'R' then
      status = 'RETRYING'
      push_error(key, cur[2], cur[4], now, data, retryable == '1', worker)
      local ra = now + (tonumber(delay) or 0)
      redis.call('HSET', key, 's', status, 'rc', n2s((tonumber(cur[4]) or 0) + 1), 'ra', n2s(ra),
        'lb', '', 'lu', '')
      local pos = redis.call('HMGET', key, 'pr', 'sq')
      enqueue_member(q, pos[1], ra, pos[2], id, now)
      wake(q)
    else
      status = 'PENDING'
      redis.call('HSET', key, 's', status, 'ra', now_s, 'lb', '', 'lu', '')
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
