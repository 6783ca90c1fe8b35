-- checkpoint_delete_thread.lua: delete every key of one thread in one atomic step.
--
-- Finds the keys through the thread's own registries (namespaces, their ids
-- and early ids, runs), never by SCAN. Used when a CIM is deleted.
--
-- KEYS[1]  <base>ns   KEYS[2]  <base>runs
-- ARGV[1]  <base>     ("<prefix>:cp:{<thread>}:")
-- Returns  the thread's run ids, so the caller can drop the thread from the
--          global run registries (which live in other slots)

local base = ARGV[1]
local doomed = {}
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local prefix = base .. 'c:' .. ns .. ':'
  for _, id in ipairs(redis.call('ZRANGE', base .. 'ids:' .. ns, 0, -1)) do
    doomed[#doomed + 1] = prefix .. id
  end
  for _, id in ipairs(redis.call('SMEMBERS', base .. 'early:' .. ns)) do
    doomed[#doomed + 1] = prefix .. id
  end
  doomed[#doomed + 1] = base .. 'ids:' .. ns
  doomed[#doomed + 1] = base .. 'blobs:' .. ns
  doomed[#doomed + 1] = base .. 'early:' .. ns
end
local runs = redis.call('SMEMBERS', KEYS[2])
for _, run in ipairs(runs) do
  doomed[#doomed + 1] = base .. 'run:' .. run
end
doomed[#doomed + 1] = KEYS[1]
doomed[#doomed + 1] = KEYS[2]
chunked('UNLINK', nil, doomed)
return runs
