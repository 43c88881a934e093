-- Deletes up to `want` terminal jobs in the given statuses (of `queue`, or
-- any) that finished before `before_us`, looking at most at `scan` of them
-- from rank `offset` of the `done` set (those that stay are skipped; the
-- caller moves its offset on by them).
-- ARGV: before_us, want, offset, scan, queue ('' = any), statuses...
-- Returns {deleted, examined, skipped}.
local before = ARGV[1]
local want = tonumber(ARGV[2])
local offset = tonumber(ARGV[3])
local scan = tonumber(ARGV[4])
local queue = ARGV[5]
local wanted = {}
for i = 6, #ARGV do wanted[ARGV[i]] = true end
local cand = redis.call('ZRANGEBYSCORE', K .. ':done', '-inf', '(' .. before, 'LIMIT', offset, scan)
local deleted = 0
local skipped = 0
local examined = 0
for _, id in ipairs(cand) do
  if deleted >= want then break end
  examined = examined + 1
  local cur = redis.call('HMGET', jkey(id), 's', 'q')
  if not cur[1] then
    -- Gone already: only its index entry was left.
    redis.call('ZREM', K .. ':done', id)
  elseif TERMINAL[cur[1]] and wanted[cur[1]] and (queue == '' or cur[2] == queue) then
    purge_job(id)
    deleted = deleted + 1
  else
    skipped = skipped + 1
  end
end
flush_counts()
flush_wake()
return {deleted, examined, skipped}
