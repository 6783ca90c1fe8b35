-- checkpoint_common.lua: helpers prepended to every other checkpoint_*.lua script.
--
-- Not a script on its own (no KEYS, no ARGV). Every key these helpers build
-- starts with the thread's base "<prefix>:cp:{<thread>}:" passed by the caller,
-- so it is in the same cluster slot as the keys the script declares.
-- Layout: cimhub/server/checkpoint/layout.py.

local US = '\31'  -- between channel and version, and between namespace and id
local RS = '\30'  -- between the blob fields of a checkpoint's "b" field

local function split(text, sep)
  local out = {}
  if not text or text == '' then
    return out
  end
  local start = 1
  while true do
    local i = string.find(text, sep, start, true)
    if not i then
      out[#out + 1] = string.sub(text, start)
      return out
    end
    out[#out + 1] = string.sub(text, start, i - 1)
    start = i + 1
  end
end

-- a < b byte by byte (Lua's own < follows the server's collation locale).
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- Runs `command` on `key` with `items` as arguments, 500 at a time (Lua's unpack limit).
local function chunked(command, key, items)
  for i = 1, #items, 500 do
    local last = math.min(i + 499, #items)
    if key then
      redis.call(command, key, unpack(items, i, last))
    else
      redis.call(command, unpack(items, i, last))
    end
  end
end

-- The fields of a checkpoint hash as a flat {field, value, ...} list, leaving out
-- the chunks ("x:..." fields) of large pending writes: a script never copies
-- those, the caller reads them one plain HGET each (chunks.py). A hash holding
-- chunks has the field "x", written with them.
local function read_checkpoint(key)
  if redis.call('HEXISTS', key, 'x') == 0 then
    return redis.call('HGETALL', key)
  end
  local names = {}
  for _, name in ipairs(redis.call('HKEYS', key)) do
    if name ~= 'x' and string.sub(name, 1, 2) ~= 'x:' then
      names[#names + 1] = name
    end
  end
  local out = {}
  for i = 1, #names, 500 do
    local last = math.min(i + 499, #names)
    local values = redis.call('HMGET', key, unpack(names, i, last))
    for j = i, last do
      out[#out + 1] = names[j]
      out[#out + 1] = values[j - i + 1]
    end
  end
  return out
end

-- Deletes checkpoint `id` of namespace `ns` (its hash holds its pending writes)
-- and its run entry. Returns the run id when that was the run's last checkpoint
-- in the thread, else false.
local function drop_checkpoint(base, ns, id)
  local key = base .. 'c:' .. ns .. ':' .. id
  local run = redis.call('HGET', key, 'r')
  redis.call('UNLINK', key)
  redis.call('ZREM', base .. 'ids:' .. ns, id)
  redis.call('SREM', base .. 'early:' .. ns, id)
  if run and run ~= '' then
    local run_key = base .. 'run:' .. run
    redis.call('SREM', run_key, ns .. US .. id)
    if redis.call('EXISTS', run_key) == 0 then
      redis.call('SREM', base .. 'runs', run)
      return run
    end
  end
  return false
end

-- Keeps only the channel values some checkpoint of `ns` still reads (values are
-- shared between checkpoints, and forks share their past), forgets ids whose
-- hash expired, and forgets the namespace once it holds nothing.
local function collect_blobs(base, ns)
  local ids_key = base .. 'ids:' .. ns
  local blobs_key = base .. 'blobs:' .. ns
  local read = {}
  local live = 0
  for _, id in ipairs(redis.call('ZRANGE', ids_key, 0, -1)) do
    local refs = redis.call('HGET', base .. 'c:' .. ns .. ':' .. id, 'b')
    if refs then
      live = live + 1
      for _, field in ipairs(split(refs, RS)) do
        read[field] = true
      end
    else
      redis.call('ZREM', ids_key, id)
    end
  end
  local unread = {}
  for _, field in ipairs(redis.call('HKEYS', blobs_key)) do
    -- a chunk "<channel>\31<version>\31<i>" lives as long as its field "<channel>\31<version>"
    local owner = field
    local first = string.find(field, US, 1, true)
    local second = first and string.find(field, US, first + 1, true)
    if second then
      owner = string.sub(field, 1, second - 1)
    end
    if not read[owner] then
      unread[#unread + 1] = field
    end
  end
  chunked('HDEL', blobs_key, unread)
  if live == 0 and redis.call('SCARD', base .. 'early:' .. ns) == 0 then
    redis.call('UNLINK', blobs_key, ids_key)
    redis.call('SREM', base .. 'ns', ns)
  end
end

