-- Turns up to `max` RUNNING jobs whose lease expired into failed attempts:
-- RETRYING (due now) while retries are left, DEAD_LETTER otherwise — or
-- FAILED, for good, if its cancellation had been requested (its error still
-- saying who cancelled it). The lease token is cleared, so the lost
-- attempt's late outcome is refused; the job's limit slots are freed, a
-- finished one leaves its sequence and gives up its unique key unless its
-- states hold the new status.
-- ARGV: max.
-- Returns one row per job: {id, FIELDS... as during the lost attempt, new status}.
local max = tonumber(ARGV[1])
local now = now_us()
local now_s = n2s(now)
local expired = redis.call('ZRANGEBYSCORE', K .. ':leases', '-inf', '(' .. now_s, 'LIMIT', 0, max)
local out = {}
local done = {}
for _, id in ipairs(expired) do
  local key = jkey(id)
  local row = load(id)
  -- row[1] is the id, then FIELDS: s is row[5]
  if row[5] == 'RUNNING' then
    local q = row[2] or '?'
    local rc = tonumber(row[7]) or 0
    local mr = tonumber(row[8]) or 0
    local worker = row[17] or '?'
    local lu = tonumber(row[18]) or 0
    local msg = 'lease expired: worker `' .. worker .. '` stopped heartbeating (lease ran out at ' .. iso(lu) .. ')'
    push_error(key, row[19], rc, now, msg, true, row[17])
    local ext = redis.call('HMGET', key, 'sq', 'uk', 'us', 'lc', 'ls', 'lr')
    local status
    if set(row[22]) then
      status = 'FAILED'
      -- row[13] is `em` as it was: who cancelled it, and why.
      if set(row[13]) then redis.call('HSET', key, 'em', row[13]) end
      redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '', 'lt', '')
    elseif rc < mr then
      status = 'RETRYING'
      redis.call('HSET', key, 's', status, 'rc', n2s(rc + 1), 'ra', now_s, 'lb', '', 'lu', '',
        'lt', '')
      enqueue_member(q, row[6], now, ext[1], id, now, has_limits(ext[4], ext[6], ext[5]))
      wake(q)
    else
      status = 'DEAD_LETTER'
      redis.call('HSET', key, 's', status, 'fa', now_s, 'lb', '', 'lu', '', 'lt', '')
    end
    if TERMINAL[status] then
      done[#done + 1] = now_s
      done[#done + 1] = id
      leave_sequence(id, ext[5])
    end
    release_key(id, status, ext[2], ext[3])
    if set(ext[4]) or set(ext[5]) then
      left_running(ext[4], ext[5])
      wake(q)
    end
    count('RUNNING', q, -1)
    count(status, q, 1)
    row[#row + 1] = status
    out[#out + 1] = row
  end
end
bulk('ZREM', K .. ':leases', expired)
bulk('ZADD', K .. ':done', done)
flush_counts()
flush_wake()
flush_finished(done)
return out
