-- index.lua: one CIM's entries in the secondary indexes of one slot, on a Redis Cluster.
--
-- On a cluster the indexes live in their own slots, so the store writes them
-- after the commit instead of inside it: one call per slot the commit's
-- indexes fall in (their calls leave together, so a commit waits one round
-- trip for all of them). Two hubs committing revisions 5 and 6 of one CIM may
-- send their index writes in either order; each index has a guard hash beside
-- it keeping the last revision applied per CIM, and an older write changes
-- nothing. The repair command (server/store/repair.py) uses the same script.
--
-- KEYS     (index, guard) pairs, all in one slot: the index (sorted set, scored by
--          updatedAt) and its guard (hash: CIM id -> last revision applied)
-- ARGV[1]  CIM id   ARGV[2]  revision
-- ARGV[3]  sharded channel to publish on after the writes ("" for none)   ARGV[4]  message
-- ARGV[5..] per pair: op, score. op "add" (ZADD at score), "remove" (ZREM), both
--          guarded by the revision; "forget" (ZREM and drop the guard entry, whatever
--          the revision: the repair's answer to an entry of a CIM that no longer exists)
-- Returns  how many pairs were applied (a pair at an older revision than its guard is not)

local cim = ARGV[1]
local revision = tonumber(ARGV[2])
local applied = 0
for i = 1, #KEYS, 2 do
  local index, guard = KEYS[i], KEYS[i + 1]
  local op = ARGV[4 + i]
  local score = ARGV[5 + i]
  if op == 'forget' then
    redis.call('ZREM', index, cim)
    redis.call('HDEL', guard, cim)
    applied = applied + 1
  elseif revision >= tonumber(redis.call('HGET', guard, cim) or '-1') then
    redis.call('HSET', guard, cim, ARGV[2])
    if op == 'add' then
      redis.call('ZADD', index, tonumber(score), cim)
    else
      redis.call('ZREM', index, cim)
    end
    applied = applied + 1
  end
end
if ARGV[3] ~= '' then
  redis.call('SPUBLISH', ARGV[3], ARGV[4])
end
return applied
