-- Stores the latest progress of running jobs, each only while it is RUNNING
-- under its fence's token (a late report of a lost lease is dropped).
-- ARGV: triples of id, token, progress (JSON).
for i = 1, #ARGV, 3 do
  local key = jkey(ARGV[i])
  local cur = redis.call('HMGET', key, 's', 'lt')
  if cur[1] == 'RUNNING' and cur[2] == ARGV[i + 1] then
    redis.call('HSET', key, 'pg', ARGV[i + 2])
  end
end
return 0
