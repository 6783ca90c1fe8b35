-- presence_sweep.lua: remove a CIM's expired members (their hub died) and say they left.
--
-- Run by every hub that has watchers of the CIM's presence, every third of the
-- TTL, and before every snapshot; atomic, so each "leave" is published once.
--
-- KEYS[1]  presence hash   KEYS[2] expiry sorted set
-- ARGV[1]  presence channel   ARGV[2] "1": return the live members (a snapshot)
-- Returns: the live members as a flat [id, member JSON, ...] list, or the number swept

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  local old = redis.call('HGET', KEYS[1], id)
  if old then
    redis.call('HDEL', KEYS[1], id)
    redis.call('SPUBLISH', ARGV[1], '{"type":"leave","id":"' .. id .. '","member":' .. old .. '}')
  end
end
if ARGV[2] == '1' then
  return redis.call('HGETALL', KEYS[1])
end
return #expired
