-- commit.lua: apply one mutation's outcome to a CIM in one atomic step.
--
-- Compare-and-set on (revision, epoch): the engine computed the outcome from
-- the document at ARGV[1]/ARGV[2]; if the stored document moved on, nothing is
-- written and the current document is returned so the engine can re-run the
-- mutation. The idempotency record is checked first, so a mutation id seen
-- within the window returns its first result and applies nothing.
--
-- KEYS[1]  CIM hash (fields doc, rev, epoch)
-- KEYS[2]  patch log stream
-- KEYS[3]  idempotency record of this mutation id
-- KEYS[4]  by-deal index      KEYS[5] by-user index        (ARGV[16] "1" only)
-- KEYS[6]  old by-status index  KEYS[7] new by-status index  (ARGV[16] "1" only)
-- KEYS[8..] (KEYS[4..] when ARGV[16] is "0") extra keys of the CIM deleted with it (kind "delete" only)
-- ARGV[1]  expected revision ("0": the CIM must not exist)
-- ARGV[2]  expected epoch ("" when creating)
-- ARGV[3]  epoch to store (the same as ARGV[2] unless creating)
-- ARGV[4]  new document JSON ("" for noop/delete)
-- ARGV[5]  new revision
-- ARGV[6]  updatedAt in ms: the score in the indexes
-- ARGV[7]  patch entry JSON: logged and published
-- ARGV[8]  idempotency record JSON   ARGV[9] its time to live in seconds
-- ARGV[10] patch log retention (entries)
-- ARGV[11] CIM id   ARGV[12] CIM channel   ARGV[13] deal channel
-- ARGV[14] deal list event JSON ("" for none)
-- ARGV[15] kind: "commit", "noop" or "delete"
-- ARGV[16] "1": update the indexes and publish the deal event here (one Redis primary);
--          "0": leave both to the store (Redis Cluster: they live in other slots)
-- Returns: {"dup", record} | {"conflict", rev, epoch, doc} | {"ok", rev, epoch}

local record = redis.call('GET', KEYS[3])
if record then
  return {'dup', record}
end

local current = redis.call('HMGET', KEYS[1], 'rev', 'epoch', 'doc')
local rev = current[1] or '0'
local epoch = current[2] or ''
if rev ~= ARGV[1] or epoch ~= ARGV[2] then
  return {'conflict', rev, epoch, current[3] or ''}
end

local kind = ARGV[15]
if kind == 'noop' then
  redis.call('SET', KEYS[3], ARGV[8], 'EX', ARGV[9])
  return {'ok', rev, epoch}
end

local id = ARGV[11]
local indexes = ARGV[16] == '1'
if kind == 'delete' then
  redis.call('DEL', KEYS[1], KEYS[2])
  for i = (indexes and 8 or 4), #KEYS do
    redis.call('DEL', KEYS[i])
  end
  if indexes then
    redis.call('ZREM', KEYS[4], id)
    redis.call('ZREM', KEYS[5], id)
    redis.call('ZREM', KEYS[6], id)
  end
  redis.call('SET', KEYS[3], ARGV[8], 'EX', ARGV[9])
  redis.call('SPUBLISH', ARGV[12], ARGV[7])
  if indexes and ARGV[14] ~= '' then
    redis.call('SPUBLISH', ARGV[13], ARGV[14])
  end
  return {'ok', ARGV[5], epoch}
end

redis.call('HSET', KEYS[1], 'doc', ARGV[4], 'rev', ARGV[5], 'epoch', ARGV[3])
-- Stream entry id "<revision>-1": XRANGE from "<r+1>-1" is exactly what a
-- client at revision r missed, and Redis refuses a revision out of order.
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[10], ARGV[5] .. '-1', 'p', ARGV[7])
if indexes then
  local score = tonumber(ARGV[6])
  redis.call('ZADD', KEYS[4], score, id)
  redis.call('ZADD', KEYS[5], score, id)
  if KEYS[6] ~= KEYS[7] then
    redis.call('ZREM', KEYS[6], id)
  end
  redis.call('ZADD', KEYS[7], score, id)
end
redis.call('SET', KEYS[3], ARGV[8], 'EX', ARGV[9])
redis.call('SPUBLISH', ARGV[12], ARGV[7])
if indexes and ARGV[14] ~= '' then
  redis.call('SPUBLISH', ARGV[13], ARGV[14])
end
return {'ok', ARGV[5], ARGV[3]}
