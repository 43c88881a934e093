-- Read only: the throughput hashes (see flush_counts in common.lua) from
-- minute ARGV[1] (Unix seconds, a minute's start) up to the current minute by
-- Redis's clock, at most TP_TTL back. Returns {minute, {field, n, ...}, ...}
-- for the minutes that have any.
local now_s = tonumber(redis.call('TIME')[1])
local last = now_s - now_s % 60
local first = tonumber(ARGV[1])
local oldest = last - TP_TTL
if first < oldest then first = oldest - oldest % 60 end
local out = {}
for m = first, last, 60 do
  local h = redis.call('HGETALL', K .. ':tp:' .. n2s(m))
  if #h > 0 then
    out[#out + 1] = n2s(m)
    out[#out + 1] = h
  end
end
return out
