-- index.lua: one CIM's entry in one secondary index on a Redis Cluster, ordered by revision.
--
-- On a cluster the indexes live in their own slots, so the store writes them
-- after the commit instead of inside it. Two hubs committing revisions 5 and 6
-- of one CIM may send their index writes in either order; the guard hash keeps
-- the last revision applied per CIM, and an older write changes nothing.
--
-- KEYS[1]  the index (sorted set, scored by updatedAt)
-- KEYS[2]  its guard (hash: CIM id -> last revision applied), same hash tag
-- ARGV[1]  CIM id   ARGV[2] revision   ARGV[3] "add" or "remove"   ARGV[4] score (add only)
-- Returns: 1 if applied, 0 if a newer revision was already applied

local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
local revision = tonumber(ARGV[2])
if revision < last then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ARGV[3] == 'add' then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[4]), ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
