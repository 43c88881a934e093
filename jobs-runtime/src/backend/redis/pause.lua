-- Pauses ('1') or resumes ('0') a queue (set `{P}:paused`, which the claim
-- script skips); resuming wakes the queue's listeners.
-- ARGV: pause, queue.
local q = ARGV[2]
if ARGV[1] == '1' then
  redis.call('SADD', K .. ':paused', q)
elseif redis.call('SREM', K .. ':paused', q) == 1 then
  wake(q)
  flush_wake()
end
return 0
