-- Deletes a job that is not RUNNING, with everything pointing at it (see
-- purge_job).
-- ARGV: id. Returns {'ok'}, {'missing'} or {'state', status}.
local id = ARGV[1]
local key = jkey(id)
if redis.call('EXISTS', key) == 0 then return {'missing'} end
local st = redis.call('HGET', key, 's')
if st == 'RUNNING' then return {'state', st} end
purge_job(id)
flush_counts()
flush_wake()
return {'ok'}
