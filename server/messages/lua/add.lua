-- messages_add.lua: append one message to a CIM's conversation and publish it, atomically.
--
-- Refuses when the CIM hash does not exist, so a message can never outlive (or
-- precede) its CIM. A message id already present returns the stored message and
-- writes nothing (idempotent retry). Otherwise, in one step: next seq, body, id
-- index, vector row (when an embedding is given) and SPUBLISH of the new message.
-- Each message gets a commit id (ARGV[10]) and names its parent, the commit id of
-- the message before it (meta `commit`), like a CIM commit: after Redis came back
-- older the same seq can name another message, and the ids tell them apart.
--
-- KEYS[1]  <prefix>:cim:{<id>}             CIM hash (fields doc, rev, epoch)
-- KEYS[2]  <prefix>:cim:{<id>}:msg:meta    hash: seq (last seq), commit (its id), rows (vector rows), dim, gen
-- KEYS[3]  <prefix>:cim:{<id>}:msg:body    hash: seq -> body JSON {"seq","row","commit","parent","message"}
-- KEYS[4]  <prefix>:cim:{<id>}:msg:ids     hash: message id -> seq
-- KEYS[5]  <prefix>:cim:{<id>}:msg:vec     string: packed little-endian float32 rows
-- KEYS[6]  <prefix>:cim:{<id>}:msg:rows    string: 9-byte records per row: u32 seq, u8 role, f32 norm
-- ARGV[1]  message id
-- ARGV[2]  message JSON without embedding (a JSON object, embedded verbatim)
-- ARGV[3]  role code: 0 user, 1 assistant
-- ARGV[4]  embedding as dim*4 bytes of float32 LE, or "" for none
-- ARGV[5]  embedding norm as 4 bytes of float32 LE, or ""
-- ARGV[6]  configured dimension
-- ARGV[7]  generation token, kept only if this creates the meta hash
-- ARGV[8]  pub/sub channel of the CIM's messages
-- ARGV[9]  most vector rows a CIM may hold
-- ARGV[10] this message's commit id (random, never repeated)
--
-- Returns  {"added", seq, body} | {"exists", seq, body} | {"no_cim"}
--          | {"dimension", stored_dim} | {"full"}

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'no_cim'}
end

local existing = redis.call('HGET', KEYS[4], ARGV[1])
if existing then
  return {'exists', tonumber(existing), redis.call('HGET', KEYS[3], existing)}
end

local embedding = ARGV[4]
local dim = tonumber(ARGV[6])
local row = 'null'
if embedding ~= '' then
  if #embedding ~= dim * 4 or #ARGV[5] ~= 4 then
    return redis.error_reply('ERR messages_add: embedding is not ' .. dim .. ' float32 values')
  end
  local stored_dim = redis.call('HGET', KEYS[2], 'dim')
  if stored_dim and tonumber(stored_dim) ~= dim then
    return {'dimension', tonumber(stored_dim)}
  end
  local rows = tonumber(redis.call('HGET', KEYS[2], 'rows') or '0')
  if rows >= tonumber(ARGV[9]) then
    return {'full'}
  end
end

redis.call('HSETNX', KEYS[2], 'gen', ARGV[7])
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local parent = redis.call('HGET', KEYS[2], 'commit') or ''
redis.call('HSET', KEYS[2], 'commit', ARGV[10])

if embedding ~= '' then
  row = redis.call('HINCRBY', KEYS[2], 'rows', 1) - 1
  redis.call('HSET', KEYS[2], 'dim', dim)
  redis.call('APPEND', KEYS[5], embedding)
  redis.call('APPEND', KEYS[6], struct.pack('<I4B', seq, tonumber(ARGV[3])) .. ARGV[5])
end

-- "seq" and "row" stay first: page.lua reads the row with a pattern anchored there.
local ids = ',"commit":' .. cjson.encode(ARGV[10]) .. ',"parent":' .. cjson.encode(parent)
local body = '{"seq":' .. seq .. ',"row":' .. row .. ids .. ',"message":' .. ARGV[2] .. '}'
redis.call('HSET', KEYS[3], seq, body)
redis.call('HSET', KEYS[4], ARGV[1], seq)

local epoch = redis.call('HGET', KEYS[1], 'epoch') or ''
redis.call('SPUBLISH', ARGV[8],
  '{"seq":' .. seq .. ',"epoch":' .. cjson.encode(epoch) .. ids .. ',"message":' .. ARGV[2] .. '}')

return {'added', seq, body}
