-- presence_set.lua: one connection joins a CIM's presence, or changes its state.
--
-- The hash holds each member's JSON; the sorted set holds when it expires
-- (Redis TIME + the TTL, so hubs' clocks do not matter). Both keys expire
-- themselves too (twice the TTL after the last write or refresh), so the
-- presence of a CIM whose hubs all died vanishes even if nobody sweeps it.
--
-- KEYS[1]  presence hash (presence id -> member JSON)
-- KEYS[2]  expiry sorted set (presence id -> expires at, ms)
-- ARGV[1]  presence id   ARGV[2] member JSON
-- ARGV[3]  entry TTL in ms   ARGV[4] at most this many live members
-- ARGV[5]  presence channel
-- Returns: "join" | "update" | "same" | "full"

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old and redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') >= tonumber(ARGV[4]) then
  return 'full'
end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
local kind = 'same'
if old ~= ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  kind = old and 'update' or 'join'
  redis.call('SPUBLISH', ARGV[5], '{"type":"' .. kind .. '","id":"' .. ARGV[1] .. '","member":' .. ARGV[2] .. '}')
end
redis.call('PEXPIRE', KEYS[1], 2 * ttl)
redis.call('PEXPIRE', KEYS[2], 2 * ttl)
return kind
