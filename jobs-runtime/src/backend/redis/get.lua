-- Read only: rows of the given jobs ({id, FIELDS...}, or {id} for a missing job).
-- ARGV: ids...
local out = {}
for i, id in ipairs(ARGV) do
  if redis.call('EXISTS', jkey(id)) == 1 then
    out[i] = load(id)
  else
    out[i] = {id}
  end
end
return out
