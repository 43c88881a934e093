-- Records outcomes, each only while its job is RUNNING under the same lease
-- token (a job written before tokens existed has none, so its late outcome
-- is refused: its lease expires and recovery takes it).
-- ARGV: worker, then 7 per update: id, token, kind, delay_us, message,
--       retryable, result.
--   kind C: COMPLETED, result = JSON ('' = none); a cancellation mark goes
--   kind E: completed and erased at once (a retention that keeps no
--           completed jobs): the hash and its entries go, its unique key is
--           given up, it leaves its sequence, its settled workflow edges
--           go; counted as a completion in the throughput history, and in
--           no status of `{P}:counts`
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
-- finished job leaves its sequence. Only jobs marked `x` (unique, or with
-- limits) have any of that to do, so a plain completion reads five fields.
-- Every failure appends to the error history and counts in `ec`.
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
  local cur = redis.call('HMGET', key, 's', 'lt', 'q', 'cx', 'x')
  if cur[1] ~= 'RUNNING' or cur[2] ~= token then
    lost[#lost + 1] = id
  else
    local q = cur[3] or '?'
    local cx = cur[4]
    local cancelled = set(cx)
    -- A unique job or one with limits (`x`): its key and limit fields.
    local uk, us, lc, ls, lr
    if cur[5] then
      local e = redis.call('HMGET', key, 'uk', 'us', 'lc', 'ls', 'lr')
      uk, us, lc, ls, lr = e[1], e[2], e[3], e[4], e[5]
    end
    -- Anything but a completion: attempt, retry count, message, position.
    local at, rc, em, pr, sq
    if kind ~= 'C' and kind ~= 'E' then
      local e = redis.call('HMGET', key, 'at', 'rc', 'em', 'pr', 'sq')
      at, rc, em, pr, sq = e[1], e[2], e[3], e[4], e[5]
    end
    local limits = cur[5] and has_limits(lc, lr, ls)
    gone[#gone + 1] = id
    local status
    if kind == 'E' then
      if cur[5] then
        leave_sequence(id, ls)
        if set(uk) and redis.call('HGET', UNIQ, uk) == id then
          redis.call('HDEL', UNIQ, uk)
        end
        if set(lc) or set(ls) then
          left_running(lc, ls)
          wake(q)
        end
      end
      redis.call('DEL', key, K .. ':settled:' .. id)
      redis.call('ZREM', K .. ':all', id)
      count('RUNNING', q, -1)
      count_throughput('COMPLETED', q, 1)
    elseif kind == 'C' then
      status = 'COMPLETED'
      redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '', 'lt', '', 'rd', result)
      -- It finished before the cancellation reached it: not cancelled.
      if cancelled then redis.call('HDEL', key, 'cx') end
    elseif kind == 'X' or (cancelled and (kind == 'R' or kind == 'L' or kind == 'S')) then
      status = 'FAILED'
      if kind == 'X' or kind == 'R' then
        push_error(key, at, rc, now, msg, retryable == '1', worker)
      end
      if cancelled and set(em) then
        -- The error says who cancelled it, and why.
        redis.call('HSET', key, 'em', em)
      end
      if not cancelled then cx = now_s end
      redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '', 'lt', '', 'cx', cx)
    elseif kind == 'F' or kind == 'D' then
      push_error(key, at, rc, now, msg, retryable == '1', worker)
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
      push_error(key, at, rc, now, msg, retryable == '1', worker)
      -- delay_us is at most MAX_DELAY: exact, see enqueue.lua.
      local ra = now + (tonumber(delay) or 0)
      redis.call('HSET', key, 's', status, 'rc', n2s((tonumber(rc) or 0) + 1), 'ra', n2s(ra),
        'lb', '', 'lu', '', 'lt', '')
      enqueue_member(q, pr, ra, sq, id, now, limits)
      wake(q)
    elseif kind == 'S' then
      local ra = now + (tonumber(delay) or 0)
      status = 'PENDING'
      if ra > now then status = 'SCHEDULED' end
      redis.call('HINCRBY', key, 'sn', 1)
      redis.call('HSET', key, 's', status, 'ra', n2s(ra), 'lb', '', 'lu', '', 'lt', '')
      enqueue_member(q, pr, ra, sq, id, now, limits)
      wake(q)
    else
      status = 'PENDING'
      redis.call('HSET', key, 's', status, 'ra', now_s, 'lb', '', 'lu', '', 'lt', '')
      enqueue_member(q, pr, now, sq, id, now, limits)
      wake(q)
    end
    if status and TERMINAL[status] then
      done[#done + 1] = now_s
      done[#done + 1] = id
    end
    if status and cur[5] then
      if TERMINAL[status] then leave_sequence(id, ls) end
      release_key(id, status, uk, us)
      if set(lc) or set(ls) then
        -- A slot of a limit key is free: other workers may take the next job.
        left_running(lc, ls)
        wake(q)
      end
    end
    if status then
      count('RUNNING', q, -1)
      count(status, q, 1)
    end
  end
end
bulk('ZREM', K .. ':leases', gone)
bulk('ZADD', K .. ':done', done)
flush_counts()
flush_wake()
flush_finished(done)
return lost
