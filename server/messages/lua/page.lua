-- messages_page.lua: one page of a CIM's messages by seq, read in one atomic step.
--
-- Seqs are contiguous (1..last) and messages are never removed one by one, so a
-- page is a seq range: no sorted set is needed and a cursor (a seq) stays valid
-- while messages are appended. With ARGV[4] > 0 the embeddings of the page are
-- read in the same step, so they always belong to the bodies returned.
--
-- KEYS[1]  <prefix>:cim:{<id>}:msg:meta    hash: seq (last seq), dim
-- KEYS[2]  <prefix>:cim:{<id>}:msg:body    hash: seq -> body JSON, which starts
--                                           {"seq":<n>,"row":<row or null>, (messages_add.lua)
-- KEYS[3]  <prefix>:cim:{<id>}:msg:vec     string: packed float32 rows
-- ARGV[1]  "asc" (seqs after ARGV[2]) or "desc" (seqs before ARGV[2], 0 = from the newest)
-- ARGV[2]  exclusive bound seq
-- ARGV[3]  page size (at least 1)
-- ARGV[4]  bytes of one vector row (dimension * 4) to return embeddings, or 0
--
-- Returns  {last_seq, stored_dim, {body, ...}, {vector bytes or "", ...}} in page order;
--          stored_dim is 0 when the CIM has no embeddings, the vector list is
--          empty when ARGV[4] is 0

local meta = redis.call('HMGET', KEYS[1], 'seq', 'dim')
local last = tonumber(meta[1] or '0')
local stored_dim = tonumber(meta[2] or '0')
local bound = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local row_bytes = tonumber(ARGV[4])
local first, stop, step
if ARGV[1] == 'asc' then
  first, stop, step = bound + 1, math.min(last, bound + limit), 1
else
  first = last
  if bound > 0 then first = math.min(bound - 1, last) end
  stop, step = math.max(1, first - limit + 1), -1
end

local bodies, vectors = {}, {}
if (step == 1 and first > stop) or (step == -1 and first < stop) then
  return {last, stored_dim, bodies, vectors}
end
local fields = {}
for seq = first, stop, step do
  fields[#fields + 1] = seq
end
for _, body in ipairs(redis.call('HMGET', KEYS[2], unpack(fields))) do
  if body then
    bodies[#bodies + 1] = body
    if row_bytes > 0 then
      local row = string.match(body, '^{"seq":%d+,"row":(%d+)')
      if row and stored_dim * 4 == row_bytes then
        local start = tonumber(row) * row_bytes
        vectors[#vectors + 1] = redis.call('GETRANGE', KEYS[3], start, start + row_bytes - 1)
      else
        vectors[#vectors + 1] = ''
      end
    end
  end
end
return {last, stored_dim, bodies, vectors}
