-- checkpoint_put.lua: store one checkpoint in one atomic step.
--
-- Writes the values of the channels whose version moved (one hash field per
-- channel version, shared by every later checkpoint that keeps that version),
-- the checkpoint hash, its index entry and its run entry. Pending writes that
-- arrived before the checkpoint are already in its hash and are kept. With a
-- TTL, every key written here gets it again, except the namespace set: it
-- carries the thread's own expiry, which only a whole-thread refresh
-- (touch.lua) extends, so every other key of the thread outlives it.
--
-- KEYS[1]  <base>ns              KEYS[2]  <base>ids:<ns>
-- KEYS[3]  <base>blobs:<ns>      KEYS[4]  <base>c:<ns>:<id>
-- KEYS[5]  <base>early:<ns>      KEYS[6]  <base>runs
-- KEYS[7]  <base>run:<run>       (only when ARGV[8] is not "")
-- ARGV[1]  encoded namespace     ARGV[2]  checkpoint id
-- ARGV[3]  TTL in ms, "0" for none (the saver's ttl_s plus its slack)
-- ARGV[4]  checkpoint without channel values (typed bytes)
-- ARGV[5]  metadata (typed bytes)
-- ARGV[6]  parent checkpoint id, "" for none
-- ARGV[7]  blob fields the checkpoint reads, joined by \30
-- ARGV[8]  run id, "" for none
-- ARGV[9..] blob field, typed value, ... for the new channel versions; a value
--          over codec.CHUNK_BYTES is a marker here, its chunks sent before by HSET
-- Returns  {1 if the namespace is new to the thread (so maybe the thread too) else 0,
--           1 if the run is new to the thread else 0,
--           PTTL of the namespace set: the thread's remaining life in ms, -1 for none}

local ttl = tonumber(ARGV[3])
local new_ns = redis.call('SADD', KEYS[1], ARGV[1])
if new_ns == 1 then
  -- A namespace new to the thread holds nothing yet: whatever is left under
  -- its name belongs to an expired thread and must not mix with the new one.
  -- (Stale channel values are left to prune: this put's large values are already
  -- in KEYS[3] as chunks; nothing reads the stale ones.)
  redis.call('UNLINK', KEYS[2], KEYS[5])
end
for i = 9, #ARGV, 1000 do
  redis.call('HSET', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HSET', KEYS[4], 'c', ARGV[4], 'm', ARGV[5], 'p', ARGV[6], 'b', ARGV[7], 'r', ARGV[8])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
redis.call('SREM', KEYS[5], ARGV[2])
local new_run = 0
if ARGV[8] ~= '' then
  new_run = redis.call('SADD', KEYS[6], ARGV[8])
  redis.call('SADD', KEYS[7], ARGV[1] .. US .. ARGV[2])
end
if ttl > 0 then
  -- the namespace set first, so that no key set after it can end before it
  if redis.call('PTTL', KEYS[1]) == -1 then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  for i = 2, #KEYS do
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return {new_ns, new_run, redis.call('PTTL', KEYS[1])}
