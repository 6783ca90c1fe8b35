-- presence_leave.lua: one connection leaves a CIM's presence (it asked, or it closed).
--
-- KEYS[1]  presence hash   KEYS[2] expiry sorted set
-- ARGV[1]  presence id     ARGV[2] presence channel
-- Returns: 1 if it was there (and "leave" was published), else 0

local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if not old then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SPUBLISH', ARGV[2], '{"type":"leave","id":"' .. ARGV[1] .. '","member":' .. old .. '}')
return 1
