-- Cancels a job. A waiting one becomes FAILED at once, with the request's
-- message as its error, marked cancelled at now (`cx`), never claimed; it
-- gives up its unique key (unless its states hold FAILED) and leaves its
-- sequence. A RUNNING one is only marked (`cx`, and the message in `em`),
-- once, and its id published on `{P}:cancel`: its worker stops it and
-- records the cancellation. A job that finished here is published on
-- `{P}:finished`, for handles awaiting it.
-- ARGV: id, message. Returns {'ok', row...}, {'missing'} or {'state', status}.
local id = ARGV[1]
local message = ARGV[2]
local key = jkey(id)
if redis.call('EXISTS', key) == 0 then return {'missing'} end
local cur = redis.call('HMGET', key, 's', 'q', 'ra', 'sq', 'uk', 'us', 'ls', 'cx')
local now = now_us()
local q = cur[2] or '?'
if WAITING[cur[1]] then
  unindex(q, cur[3], cur[4], id)
  redis.call('HSET', key, 's', 'FAILED', 'em', message, 'fa', n2s(now), 'cx', n2s(now))
  redis.call('ZADD', K .. ':done', n2s(now), id)
  release_key(id, 'FAILED', cur[5], cur[6])
  if set(cur[7]) then
    leave_sequence(id, cur[7])
    -- The next job of its sequence may go.
    wake(q)
  end
  count(cur[1], q, -1)
  count('FAILED', q, 1)
  flush_counts()
  flush_wake()
  -- Handles awaiting it.
  redis.call('PUBLISH', K .. ':finished', id)
elseif cur[1] == 'RUNNING' then
  if not set(cur[8]) then
    redis.call('HSET', key, 'cx', n2s(now), 'em', message)
    redis.call('PUBLISH', K .. ':cancel', id)
  end
else
  return {'state', cur[1] or '?'}
end
return {'ok', load(id)}
