-- checkpoint_delete_runs.lua: delete the checkpoints of some runs in one thread, atomically.
--
-- Deletes each checkpoint the runs created, with its pending writes, in every
-- namespace, then the channel values no remaining checkpoint reads (values
-- shared with other runs' checkpoints stay).
--
-- KEYS[1]  <base>ns   KEYS[2]  <base>runs
-- ARGV[1]  <base>     ARGV[2..] run ids
-- Returns  {number of checkpoints deleted, 1 if the thread still holds anything else 0}

local base = ARGV[1]
local touched = {}
local deleted = 0
for i = 2, #ARGV do
  local run_key = base .. 'run:' .. ARGV[i]
  for _, member in ipairs(redis.call('SMEMBERS', run_key)) do
    local sep = string.find(member, US, 1, true)
    local ns = string.sub(member, 1, sep - 1)
    local id = string.sub(member, sep + 1)
    redis.call('UNLINK', base .. 'c:' .. ns .. ':' .. id)
    redis.call('ZREM', base .. 'ids:' .. ns, id)
    redis.call('SREM', base .. 'early:' .. ns, id)
    touched[ns] = true
    deleted = deleted + 1
  end
  redis.call('UNLINK', run_key)
  redis.call('SREM', KEYS[2], ARGV[i])
end
local names = {}
for ns in pairs(touched) do
  names[#names + 1] = ns
end
table.sort(names)
for _, ns in ipairs(names) do
  collect_blobs(base, ns)
end
return {deleted, redis.call('EXISTS', KEYS[1])}
