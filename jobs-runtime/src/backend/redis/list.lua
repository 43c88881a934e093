-- Read only: scans up to `scan` jobs in enqueue order from rank `start` and
-- returns the ids that match the filters ('' = any).
-- ARGV: start, scan, queue, status, type. Returns {next_start or -1, ids...}.
local start = tonumber(ARGV[1])
local scan = tonumber(ARGV[2])
local fq, fs, ft = ARGV[3], ARGV[4], ARGV[5]
local ids = redis.call('ZRANGE', K .. ':all', start, start + scan - 1)
local out = {-1}
if #ids == scan then out[1] = start + scan end
for _, id in ipairs(ids) do
  local cur = redis.call('HMGET', jkey(id), 'q', 's', 't')
  if (fq == '' or cur[1] == fq) and (fs == '' or cur[2] == fs) and (ft == '' or cur[3] == ft) then
    out[#out + 1] = id
  end
end
return out
