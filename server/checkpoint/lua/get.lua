-- checkpoint_get.lua: load checkpoints of one namespace with their values and writes.
--
-- One round trip per checkpoint read: the hash (checkpoint, metadata, parent,
-- pending writes) and the channel values its "b" field names. A hash that holds
-- only early writes is not a checkpoint and is skipped, as is an expired one.
-- A namespace missing from the thread's namespace set holds nothing: with a
-- TTL that set expires first, and keys still left under it are on their way out.
--
-- KEYS[1]  <base>ids:<ns>   KEYS[2]  <base>blobs:<ns>   KEYS[3]  <base>ns
-- ARGV[1]  <base>c:<ns>:    (the id follows)   ARGV[2]  encoded namespace
-- ARGV[3..] checkpoint ids; none: the newest checkpoint of the namespace
-- Returns  one entry per checkpoint found, in the order asked:
--          {id, {field, value, ...} of its hash, {value or nil per field in "b"}}

local function load(id)
  local fields = read_checkpoint(ARGV[1] .. id)
  local refs = nil
  local found = false
  for i = 1, #fields, 2 do
    local name = fields[i]
    if name == 'c' then
      found = true
    elseif name == 'b' then
      refs = fields[i + 1]
    end
  end
  if not found then
    return nil
  end
  local values = {}
  if refs and refs ~= '' then
    values = redis.call('HMGET', KEYS[2], unpack(split(refs, RS)))
  end
  return {id, fields, values}
end

local out = {}
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 0 then
  return out
end
if #ARGV == 2 then
  local offset = 0
  while true do
    -- One id at a time: the newest nearly always exists, and every id read costs.
    local ids = redis.call('ZREVRANGEBYLEX', KEYS[1], '+', '-', 'LIMIT', offset, 1)
    if #ids == 0 then
      return out
    end
    for _, id in ipairs(ids) do
      local entry = load(id)
      if entry then
        out[1] = entry
        return out
      end
    end
    offset = offset + #ids
  end
end
for i = 3, #ARGV do
  local entry = load(ARGV[i])
  if entry then
    out[#out + 1] = entry
  end
end
return out
