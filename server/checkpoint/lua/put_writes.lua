-- checkpoint_put_writes.lua: store the pending writes of one task in one atomic step.
--
-- Writes go into the checkpoint's own hash, whether or not the checkpoint is
-- stored yet: when it is not, its id is noted in the namespace's "early" set
-- so that deleting the thread finds the hash. A regular write already stored
-- under the same (task, idx) is kept (a retried task writes nothing twice); a
-- special write (error, interrupt, resume, scheduled) replaces the stored one.
--
-- With a TTL, the keys written get it again; the namespace set keeps the
-- thread's own expiry (see put.lua).
--
-- KEYS[1]  <base>ns   KEYS[2]  <base>c:<ns>:<id>   KEYS[3]  <base>early:<ns>
-- KEYS[4]  <base>ids:<ns>
-- ARGV[1]  encoded namespace   ARGV[2]  checkpoint id   ARGV[3]  TTL in ms, "0" for none
-- ARGV[4..] field, value, mode, ... per write; mode "1" replaces, "0" keeps a stored value
-- Returns  {1 if the namespace is new to the thread (so maybe the thread too) else 0,
--           PTTL of the namespace set: the thread's remaining life in ms, -1 for none}

local ttl = tonumber(ARGV[3])
local new_ns = redis.call('SADD', KEYS[1], ARGV[1])
if new_ns == 1 then
  -- Left over from an expired thread (see put.lua).
  redis.call('UNLINK', KEYS[3], KEYS[4])
end
for i = 4, #ARGV, 3 do
  if ARGV[i + 2] == '1' then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  else
    redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
if redis.call('HEXISTS', KEYS[2], 'c') == 0 then
  redis.call('SADD', KEYS[3], ARGV[2])
end
if ttl > 0 then
  -- the namespace set first, so that no key set after it can end before it
  if redis.call('PTTL', KEYS[1]) == -1 then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  for i = 2, 3 do
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return {new_ns, redis.call('PTTL', KEYS[1])}
