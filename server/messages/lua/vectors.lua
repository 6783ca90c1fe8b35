-- messages_vectors.lua: the vector rows of a CIM that a caller does not have yet.
--
-- Rows are append-only and immutable for one generation (the meta hash's gen,
-- new after every delete), so a caller holding rows 0..known-1 of generation
-- `gen` needs only the suffix. Reading meta and both strings in one script gives
-- a consistent snapshot: the row count, vectors and row records agree.
--
-- A large suffix (a cold cache) is not returned here: copying tens of MB through
-- Lua is several times slower than plain GETRANGEs (docs/messages.md), so the
-- caller reads those rows itself in a MULTI that re-checks gen.
--
-- KEYS[1]  <prefix>:cim:{<id>}:msg:meta    hash: rows, dim, gen
-- KEYS[2]  <prefix>:cim:{<id>}:msg:vec     string: packed float32 rows
-- KEYS[3]  <prefix>:cim:{<id>}:msg:rows    string: 9-byte row records
-- ARGV[1]  generation the caller holds rows of ("" for none)
-- ARGV[2]  rows the caller holds of that generation
-- ARGV[3]  size of one row record in bytes (9)
-- ARGV[4]  largest vector suffix, in bytes, to return inline
--
-- Returns  {gen, dim, rows, from, vec_bytes, row_bytes}: rows from..rows-1
--          (from = ARGV[2] when the generation matches, else 0); gen "" and
--          rows 0 when the CIM has no messages; only {gen, dim, rows, from}
--          when the suffix is larger than ARGV[4]

local meta = redis.call('HMGET', KEYS[1], 'gen', 'dim', 'rows')
local gen = meta[1] or ''
local dim = tonumber(meta[2] or '0')
local rows = tonumber(meta[3] or '0')
local from = 0
if gen ~= '' and gen == ARGV[1] then
  from = math.min(tonumber(ARGV[2]), rows)
end
if from >= rows then
  return {gen, dim, rows, from, '', ''}
end
if (rows - from) * dim * 4 > tonumber(ARGV[4]) then
  return {gen, dim, rows, from}
end
local record = tonumber(ARGV[3])
return {
  gen, dim, rows, from,
  redis.call('GETRANGE', KEYS[2], from * dim * 4, rows * dim * 4 - 1),
  redis.call('GETRANGE', KEYS[3], from * record, rows * record - 1),
}
