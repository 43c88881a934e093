-- Builds the due-order set `{P}:due` for jobs that waited before it existed
-- (a namespace written by an earlier version), one slice of one lane a call.
-- ARGV: 'check' -> 1 if the set is known complete, else 0;
--       'add', lane key suffix ('ready:<q>', 'lready:<q>', 'delayed:<q>'),
--              start rank, count -> how many members the slice had;
--       'done' -> marks the set complete.
local MARK = K .. ':due:built'
local op = ARGV[1]
if op == 'check' then
  return redis.call('EXISTS', MARK)
elseif op == 'add' then
  local start = tonumber(ARGV[3])
  local ms = redis.call('ZRANGE', K .. ':' .. ARGV[2], start, start + tonumber(ARGV[4]) - 1)
  local args = {}
  for _, m in ipairs(ms) do
    args[#args + 1] = 0
    args[#args + 1] = m
  end
  bulk('ZADD', DUE, args)
  return #ms
else
  redis.call('SET', MARK, '1')
  return 1
end
