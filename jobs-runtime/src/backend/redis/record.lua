-- Records outcomes, each only while its job is RUNNING under the same lease
-- token (a job written before tokens existed has none, so its late outcome
-- is refused: its lease expires and recovery takes it).
-- ARGV: worker, then 7 per update: id, token, kind, delay_us, message,
--       retryable, result.
--   kind C: COMPLETED, result = JSON ('' = none); a cancellation mark goes
--   kind R: RETRYING after delay_us, with message
--   kind F: FAILED, with message; result = JSON ('' = none)
--   kind D: DEAD_LETTER, with message
--   kind L: released back to PENDING, due now (not a failure)
--   kind S: snoozed: SCHEDULED after delay_us (PENDING if 0), `sn` + 1, not
--           a failure (retry count and error history untouched)
--   kind X: cancelled: FAILED for good, with message as its attempt's error
-- A job whose cancellation was requested (`cx`) never waits again: R, L and
-- S end it as X does (R records its error); its error message stays the
-- cancellation's ("cancelled by ...").
-- Every outcome clears the lease token, frees the job's limit slots, and
-- gives up its unique key unless its unique states hold the new status; a
-- finished job leaves its sequence. Every failure appends to the error
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
  local cur = redis.call('HMGET', key, 's', 'lt', 'q', 'at', 'rc', 'cx', 'em', 'uk', 'us', 'lc',
    'ls', 'pr', 'sq')
  if cur[1] ~= 'RUNNING' or cur[2] ~= token then
    lost[#lost + 1] = id
  else
    local q = cur[3] or '?'
    local cx = cur[6]
    local cancelled = set(cx)
    gone[#gone + 1] = id
    local status
    if kind == 'C' then
      status = 'COMPLETED'
      -- It finished before the cancellation reached it: not cancelled.
      redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '', 'lt', '', 'rd', result)
      if cancelled then redis.call('HDEL', key, 'cx') end
    elseif kind == 'X' or (cancelled and (kind == 'R' or kind == 'L' or kind == 'S')) then
      status = 'FAILED'
      if kind == 'X' or kind == 'R' then
        push_error(key, cur[4], cur[5], now, msg, retryable == '1', worker)
      end
      if cancelled and set(cur[7]) then
        -- The error says who cancelled it, and why.
        redis.call('HSET', key, 'em', cur[7])
      end
      if not cancelled then cx = now_s end
      redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '', 'lt', '', 'cx', cx)
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
    elseif kind == 'R' then
      status = 'RETRYING'
      push_error(key, cur[4], cur[5], now, msg, retryable == '1', worker)
      -- delay_us is at most MAX_DELAY: exact, see enqueue.lua.
      local ra = now + (tonumber(delay) or 0)
      redis.call('HSET', key, 's', status, 'rc', n2s((tonumber(cur[5]) or 0) + 1), 'ra', n2s(ra),
        'lb', '', 'lu', '', 'lt', '')
      enqueue_member(q, cur[12], ra, cur[13], id, now)
      wake(q)
    elseif kind == 'S' then
      local ra = now + (tonumber(delay) or 0)
      status = 'PENDING'
      if ra > now then status = 'SCHEDULED' end
      redis.call('HINCRBY', key, 'sn', 1)
      redis.call('HSET', key, 's', status, 'ra', n2s(ra), 'lb', '', 'lu', '', 'lt', '')
      enqueue_member(q, cur[12], ra, cur[13], id, now)
      wake(q)
    else
      status = 'PENDING'
      redis.call('HSET', key, 's', status, 'ra', now_s, 'lb', '', 'lu', '', 'lt', '')
      enqueue_member(q, cur[12], now, cur[13], id, now)
      wake(q)
    end
    if TERMINAL[status] then
      done[#done + 1] = now_s
      done[#done + 1] = id
      leave_sequence(id, cur[11])
    end
    release_key(id, status, cur[8], cur[9])
    if set(cur[10]) or set(cur[11]) then
      -- A slot of a limit key is free: other workers may take the next job.
      left_running(cur[10], cur[11])
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
