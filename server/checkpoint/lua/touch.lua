-- checkpoint_touch.lua: give one page of a namespace's keys a new expiry (whole-thread TTL).
--
-- A thread expires whole: its namespace set carries the thread's expiry and
-- every other key of the thread is kept at least as long. When the thread is
-- read or written with less than the TTL left, the saver refreshes every key
-- with this script, a page of checkpoints per call so that no call holds
-- Redis for long, and the namespace set last (maintenance.plan_touch).
--
-- KEYS[1]  <base>ids:<ns>   KEYS[2]  <base>blobs:<ns>   KEYS[3]  <base>early:<ns>
-- ARGV[1]  <base>c:<ns>:    (the id follows)
-- ARGV[2]  new TTL in ms    ARGV[3]  first index in the ids index   ARGV[4]  page size
-- Returns  the index to continue from, or 0 when the namespace is done

local ttl = tonumber(ARGV[2])
local start = tonumber(ARGV[3])
local page = tonumber(ARGV[4])
if start == 0 then
  for i = 1, #KEYS do
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    redis.call('PEXPIRE', ARGV[1] .. id, ttl)
  end
end
local ids = redis.call('ZRANGE', KEYS[1], start, start + page - 1)
for _, id in ipairs(ids) do
  redis.call('PEXPIRE', ARGV[1] .. id, ttl)
end
if #ids < page then
  return 0
end
return start + #ids
