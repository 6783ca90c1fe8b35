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
--          updatedAt) and its guard (hash: CIM id -> "epoch:revision:at" last applied)
-- ARGV[1]  CIM id   ARGV[2]  revision   ARGV[3]  epoch   ARGV[4]  at (the commit's updatedAt, ms)
-- ARGV[5]  sharded channel to publish on after the writes ("" for none)   ARGV[6]  message
-- ARGV[7..] per pair: op, score. op "add" (ZADD at score), "remove" (ZREM), both
--          guarded; "forget" (ZREM and drop the guard entry, whatever the revision:
--          the repair's answer to an entry of a CIM that no longer exists)
-- Returns  how many pairs were applied (a pair older than its guard is not)
--
-- Older: within one epoch, a lower revision. Across epochs (the same CIM id
-- deleted and created again starts at revision 1 with a new epoch), an
-- earlier `at`: revisions of two epochs say nothing about which came later.

local cim = ARGV[1]
local revision = tonumber(ARGV[2])
local epoch = ARGV[3]
local at = tonumber(ARGV[4])
local stamp = epoch .. ':' .. ARGV[2] .. ':' .. ARGV[4]

local function newer(guard)
  local seen = redis.call('HGET', guard, cim)
  if not seen then
    return true
  end
  local seen_epoch, seen_rev, seen_at = string.match(seen, '^([^:]*):(%d+):(%d+)$')
  if seen_epoch == nil then
    return revision >= tonumber(seen)  -- a guard written before epochs were kept: a bare revision
  end
  if seen_epoch == epoch then
    return revision >= tonumber(seen_rev)
  end
  return at >= tonumber(seen_at)
end

local applied = 0
for i = 1, #KEYS, 2 do
  local index, guard = KEYS[i], KEYS[i + 1]
  local op = ARGV[6 + i]
  local score = ARGV[7 + i]
  if op == 'forget' then
    redis.call('ZREM', index, cim)
    redis.call('HDEL', guard, cim)
    applied = applied + 1
  elseif newer(guard) then
    redis.call('HSET', guard, cim, stamp)
    if op == 'add' then
      redis.call('ZADD', index, tonumber(score), cim)
    else
      redis.call('ZREM', index, cim)
    end
    applied = applied + 1
  end
end
if ARGV[5] ~= '' then
  redis.call('SPUBLISH', ARGV[5], ARGV[6])
end
return applied
