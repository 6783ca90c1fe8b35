-- checkpoint_export.lua: read a whole thread in one consistent step (for copy_thread).
--
-- KEYS[1]  <base>ns
-- ARGV[1]  <base>
-- Returns  one entry per namespace:
--          {encoded ns, {blob field, value, ...}, {{id, {field, value, ...}}, ...}}
--          listing every checkpoint hash, early-write-only hashes included

local base = ARGV[1]
local out = {}
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local prefix = base .. 'c:' .. ns .. ':'
  local hashes = {}
  local seen = {}
  local ids = redis.call('ZRANGE', base .. 'ids:' .. ns, 0, -1)
  for _, id in ipairs(redis.call('SMEMBERS', base .. 'early:' .. ns)) do
    ids[#ids + 1] = id
  end
  for _, id in ipairs(ids) do
    if not seen[id] then
      seen[id] = true
      local fields = redis.call('HGETALL', prefix .. id)
      if #fields > 0 then
        hashes[#hashes + 1] = {id, fields}
      end
    end
  end
  out[#out + 1] = {ns, redis.call('HGETALL', base .. 'blobs:' .. ns), hashes}
end
return out
