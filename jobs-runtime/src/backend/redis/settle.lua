-- Settles the workflow edges from `parent` to each child: set
-- `{P}:settled:<child>` holds the parents whose edge to the child settled, so
-- an edge counts once however often it is settled. A child that does not
-- exist (deleted meanwhile: a workflow's steps are stored together) keeps
-- its set only for SETTLED_TTL, since no deletion of it will come to drop it.
-- ARGV: parent, children... Returns per child how many of its edges are
-- settled now.
local SETTLED_TTL = 86400
local parent = ARGV[1]
local out = {}
for i = 2, #ARGV do
  local child = ARGV[i]
  local key = K .. ':settled:' .. child
  if redis.call('SADD', key, parent) == 1 and redis.call('EXISTS', jkey(child)) == 0 then
    redis.call('EXPIRE', key, SETTLED_TTL)
  end
  out[#out + 1] = redis.call('SCARD', key)
end
return out
