-- Settles workflow edges: set `{P}:settled:<child>` holds the parents whose
-- edge to the child settled, so an edge counts once however often it is
-- settled. A child that does not exist (deleted meanwhile: a workflow's
-- steps are stored together) keeps its set only for SETTLED_TTL, since no
-- deletion of it will come to drop it.
-- ARGV: parent, child, parent, child, ... (one pair per edge, of any
-- parents). Returns per edge how many edges of its child are settled once
-- every edge of the call is.
local SETTLED_TTL = 86400
local out = {}
for i = 1, #ARGV, 2 do
  local key = K .. ':settled:' .. ARGV[i + 1]
  if redis.call('SADD', key, ARGV[i]) == 1 and redis.call('EXISTS', jkey(ARGV[i + 1])) == 0 then
    redis.call('EXPIRE', key, SETTLED_TTL)
  end
end
for i = 2, #ARGV, 2 do
  out[#out + 1] = redis.call('SCARD', K .. ':settled:' .. ARGV[i])
end
return out
