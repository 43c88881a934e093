-- Read only: one page of `list_page`, a walk of one sorted set from just
-- after the cursor, looking at no more than `scan` jobs.
-- ARGV: order ('o' enqueue order, 'n' newest first, 'd' due soonest,
--       'f' recently finished), cursor key 1 and 2 ('' = from the start),
--       scan, want (matches to return at most), skip (matches to skip first),
--       queue, status, type, cancelled ('1' / '0' / ''), needle (lower case,
--       '' = no search).
-- Returns {more ('1' when the walk stopped at `scan` with jobs after),
--          last_k1, last_k2 (where it stopped), the matches still to skip,
--          then per match: id, k1, k2}: the keys make the cursor of a job
--          (seq; run_at and seq; finish time and id). The Rust side calls it
--          again from where it stopped, `scan` of at most 1,000 a call, so
--          Redis is never blocked for long.
local order, c1, c2 = ARGV[1], ARGV[2], ARGV[3]
local scan, want, skip = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local fq, fs, ft, fc, needle = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local CHUNK = 500

local function has(text)
  return text and string.find(string.lower(text), needle, 1, true) ~= nil
end

-- Whether job `id` passes the filters and the search.
local function passes(id)
  local key = jkey(id)
  local cur = redis.call('HMGET', key, 'q', 's', 't', 'cx')
  if not cur[2] then return false end
  if (fq ~= '' and cur[1] ~= fq) or (fs ~= '' and cur[2] ~= fs) or (ft ~= '' and cur[3] ~= ft)
      or (fc ~= '' and (fc == '1') ~= set(cur[4])) then
    return false
  end
  if needle == '' then return true end
  if has(cur[3]) then return true end
  local t = redis.call('HMGET', key, 'p', 'em', 'er')
  if has(t[1]) or has(t[2]) then return true end
  if set(t[3]) and has(t[3]) then
    -- The history's raw text holds the needle: is it in a message?
    local ok, entries = pcall(cjson.decode, '[' .. t[3] .. ']')
    if ok then
      for _, e in ipairs(entries) do
        if type(e.m) == 'string' and has(e.m) then return true end
      end
    end
  end
  return false
end

-- The next chunk of the walk after position (k1, k2): a list of {id, k1, k2}.
local function chunk(k1, k2, n)
  local out = {}
  if order == 'o' or order == 'n' then
    local r
    if order == 'o' then
      r = redis.call('ZRANGE', K .. ':all', k1 == '' and '-inf' or '(' .. k1, '+inf',
        'BYSCORE', 'LIMIT', 0, n, 'WITHSCORES')
    else
      r = redis.call('ZRANGE', K .. ':all', k1 == '' and '+inf' or '(' .. k1, '-inf',
        'BYSCORE', 'REV', 'LIMIT', 0, n, 'WITHSCORES')
    end
    for i = 1, #r, 2 do
      out[#out + 1] = {r[i], n2s(tonumber(r[i + 1])), ''}
    end
  elseif order == 'd' then
    -- Members are run_at (17 digits), seq (16 digits), id; '~' sorts after
    -- every id, so the bound passes the cursor's own member.
    local from = '-'
    if k1 ~= '' then
      from = '(' .. string.format('%017d%016d', tonumber(k1), tonumber(k2)) .. '~'
    end
    local r = redis.call('ZRANGE', DUE, from, '+', 'BYLEX', 'LIMIT', 0, n)
    for _, m in ipairs(r) do
      out[#out + 1] = {string.sub(m, ID_AT), string.sub(m, 1, 17), string.sub(m, 18, 33)}
    end
  else
    local done = K .. ':done'
    if k1 ~= '' then
      -- Ties of the cursor's finish time first: members below its id.
      local ties = redis.call('ZRANGE', done, k1, k1, 'BYSCORE')
      for i = #ties, 1, -1 do
        if #out < n and ties[i] < k2 then out[#out + 1] = {ties[i], k1, ties[i]} end
      end
    end
    if #out < n then
      local r = redis.call('ZRANGE', done, k1 == '' and '+inf' or '(' .. k1, '-inf',
        'BYSCORE', 'REV', 'LIMIT', 0, n - #out, 'WITHSCORES')
      for i = 1, #r, 2 do
        out[#out + 1] = {r[i], n2s(tonumber(r[i + 1])), r[i]}
      end
    end
  end
  return out
end

local result = {'0', '', '', '0'}
local examined, found = 0, 0
local k1, k2 = c1, c2
while found < want do
  local n = scan - examined
  if n <= 0 then
    -- Stopped at the scan limit: is there anything after?
    if #chunk(k1, k2, 1) > 0 then result[1] = '1' end
    break
  end
  if n > CHUNK then n = CHUNK end
  local rows = chunk(k1, k2, n)
  for _, row in ipairs(rows) do
    examined = examined + 1
    k1, k2 = row[2], row[3]
    if passes(row[1]) then
      if skip > 0 then
        skip = skip - 1
      else
        found = found + 1
        result[#result + 1] = row[1]
        result[#result + 1] = row[2]
        result[#result + 1] = row[3]
        if found >= want then break end
      end
    end
  end
  if #rows < n then break end
end
result[2], result[3], result[4] = k1, k2, n2s(skip)
return result
