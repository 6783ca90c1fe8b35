-- checkpoint_delta_history.lua: walk a checkpoint's parent chain for some channels' writes and seeds.
--
-- Serves get_delta_channel_history (DeltaChannel) in a few round trips
-- instead of one per ancestor. From the start checkpoint, visits ancestors
-- newest first; at each, returns the pending writes to the channels still
-- open, and for each open channel whose value this ancestor stores, that
-- value (the seed), which closes the channel. Bounded: stops after ARGV[5]
-- ancestors, or once ARGV[6] bytes are gathered, and says where to go on, so
-- no call holds Redis long whatever the thread's size.
--
-- KEYS[1]  <base>ns   KEYS[2]  <base>blobs:<ns>   KEYS[3]  <base>ids:<ns>
-- ARGV[1]  <base>c:<ns>:   ARGV[2]  encoded namespace
-- ARGV[3]  checkpoint id, "" for the newest of the namespace
-- ARGV[4]  "1": start at that checkpoint's parent (first call), "0": at that checkpoint
-- ARGV[5]  most ancestors to visit   ARGV[6]  bytes after which to stop
-- ARGV[7..] channels still open
-- Returns  {id to continue from ("" when the walk is over),
--           {{id, {write field, value, ...}, {blob field, seed, ...}}, ...} newest first};
--          a seed over chunks.CHUNK_BYTES comes as its marker (the caller reads the chunks)

local out = {}
if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 0 then
  return {'', out}
end
local cursor = ARGV[3]
if ARGV[4] == '1' then
  if cursor == '' then
    -- the newest stored checkpoint (ids whose hash holds only early writes are skipped)
    for _, id in ipairs(redis.call('ZREVRANGEBYLEX', KEYS[3], '+', '-')) do
      if redis.call('HEXISTS', ARGV[1] .. id, 'c') == 1 then
        cursor = id
        break
      end
    end
  end
  if cursor == '' then
    return {'', out}
  end
  cursor = redis.call('HGET', ARGV[1] .. cursor, 'p') or ''
end
local open = {}
local left = 0
for i = 7, #ARGV do
  open[ARGV[i]] = true
  left = left + 1
end
local budget = tonumber(ARGV[6])
local visits = tonumber(ARGV[5])
local bytes = 0
while cursor ~= '' and left > 0 do
  if #out >= visits or (#out > 0 and bytes >= budget) then
    return {cursor, out}
  end
  local fields = read_checkpoint(ARGV[1] .. cursor)
  local refs = nil
  local parent = ''
  local stored = false
  local writes = {}
  for i = 1, #fields, 2 do
    local name, value = fields[i], fields[i + 1]
    if name == 'c' then
      stored = true
    elseif name == 'b' then
      refs = value
    elseif name == 'p' then
      parent = value
    elseif string.sub(name, 1, 2) == 'w:' then
      local nul = string.find(value, '\0', 1, true)
      if nul and open[string.sub(value, 1, nul - 1)] then
        writes[#writes + 1] = name
        writes[#writes + 1] = value
        bytes = bytes + #value
      end
    end
  end
  if not stored then
    return {'', out}  -- the chain is cut (pruned or expired): nothing older is reachable
  end
  local seeds = {}
  local closed = {}
  for _, ref in ipairs(split(refs, RS)) do
    local sep = string.find(ref, US, 1, true)
    local channel = string.sub(ref, 1, sep - 1)
    if open[channel] then
      local value = redis.call('HGET', KEYS[2], ref)
      if value then
        seeds[#seeds + 1] = ref
        seeds[#seeds + 1] = value
        closed[#closed + 1] = channel
        bytes = bytes + #value
      end
    end
  end
  for _, channel in ipairs(closed) do
    open[channel] = nil
    left = left - 1
  end
  out[#out + 1] = {cursor, writes, seeds}
  cursor = parent
end
return {'', out}
