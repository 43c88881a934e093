-- The registry of running workers: hash `{P}:workers` (id -> what the worker
-- says of itself, JSON), hash `{P}:workers:seen` (id -> when the backend last
-- heard from it, us) and zset `{P}:workers:exp` (id -> when its entry
-- expires, us), all by the server's clock.
-- ARGV: 'reg', id, info, ttl_us | 'dereg', id | 'list'.
-- 'list' drops expired entries and returns {id, info, seen} per live worker.
local op = ARGV[1]
local W = K .. ':workers'
if op == 'reg' then
  local now = now_us()
  redis.call('HSET', W, ARGV[2], ARGV[3])
  redis.call('HSET', W .. ':seen', ARGV[2], n2s(now))
  redis.call('ZADD', W .. ':exp', n2s(now + tonumber(ARGV[4])), ARGV[2])
  return 0
elseif op == 'dereg' then
  redis.call('HDEL', W, ARGV[2])
  redis.call('HDEL', W .. ':seen', ARGV[2])
  redis.call('ZREM', W .. ':exp', ARGV[2])
  return 0
end
local now_ = now_us()
local dead = redis.call('ZRANGEBYSCORE', W .. ':exp', '-inf', n2s(now_))
for _, id in ipairs(dead) do
  redis.call('HDEL', W, id)
  redis.call('HDEL', W .. ':seen', id)
end
bulk('ZREM', W .. ':exp', dead)
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', W .. ':exp', '(' .. n2s(now_), '+inf')) do
  local v = redis.call('HGET', W, id)
  if v then
    out[#out + 1] = {id, v, redis.call('HGET', W .. ':seen', id)}
  end
end
return out
