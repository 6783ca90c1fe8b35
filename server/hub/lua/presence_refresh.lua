-- presence_refresh.lua: a hub's heartbeat for its connections' members on one CIM.
--
-- KEYS[1]  presence hash   KEYS[2] expiry sorted set
-- ARGV[1]  entry TTL in ms   ARGV[2..] presence ids
-- Returns: the ids no longer there (swept while the hub was stalled past the
-- TTL): their connections must join again.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local missing = {}
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[i])
  else
    missing[#missing + 1] = ARGV[i]
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], 2 * ttl)
  redis.call('PEXPIRE', KEYS[2], 2 * ttl)
end
return missing
