-- Read only: scans up to `scan` jobs in enqueue order from rank `start` and
-- returns the ids that match the filters ('' = any).
-- ARGV: start, scan, queue, status, type, cancelled ('1': only cancelled jobs,
--       '0': only jobs not cancelled). Returns {next_start or -1, ids...}.
local start = tonumber(ARGV[1])
local scan = tonumber(ARGV[2])
local fq, fs, ft, fc = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ids = redis.call('ZRANGE', K .. ':all', start, start + scan - 1)
local out = {-1}
if #ids == scan then out[1] = start + scan end
for _, id in ipairs(ids) do
  local cur = redis.call('HMGET', jkey(id), 'q', 's', 't', 'cx')
  if (fq == '' or cur[1] == fq) and (fs == '' or cur[2] == fs) and (ft == '' or cur[3] == ft)
      and (fc == '' or (fc == '1') == (cur[4] ~= false and cur[4] ~= '')) then
    out[#out + 1] = id
  end
end
return out
