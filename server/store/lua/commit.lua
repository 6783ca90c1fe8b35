-- commit.lua: apply one mutation's outcome to a CIM in one atomic step.
--
-- Compare-and-set on (revision, epoch, commit id): the engine computed the
-- outcome from the document at ARGV[1]/ARGV[2]/ARGV[19]; if the stored document
-- moved on, nothing is written and the current document is returned so the
-- engine can re-run the mutation. The commit id is random per commit, so a
-- Redis that came back older (same revision and epoch, other content) still
-- refuses a commit computed from the newer document a hub had cached. The idempotency record is checked first, so a mutation id seen
-- within the window returns its first result and applies nothing.
--
-- KEYS[1]  CIM hash (fields doc, rev, epoch, commit)
-- KEYS[2]  patch log stream
-- KEYS[3]  idempotency record of this mutation id
-- KEYS[4]  by-deal index      KEYS[5] by-user index        (ARGV[21] "1" only)
-- KEYS[6]  old by-status index  KEYS[7] new by-status index  (ARGV[21] "1" only)
-- KEYS[8..] (KEYS[4..] when ARGV[21] is "0") extra keys of the CIM deleted with it (kind "delete" only)
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
-- ARGV[16] history snapshot interval K ("0": no snapshots, the log is a plain
--          MAXLEN ARGV[10] window). Else entry 1 and every K-th entry also carry
--          the whole document (field "s"), and the log is trimmed only at such
--          entries, so every revision in it can be rebuilt from a snapshot plus
--          fewer than K patches (cimhub.server.store.history).
-- ARGV[17] history max age in ms ("0": no age limit): snapshot intervals
--          wholly older than updatedAt - this are dropped.
-- ARGV[18] patch log retention in bytes of its entries (the oldest go first; the newest entry,
--          and with history on the newest snapshot interval, always stays)
-- ARGV[19] expected commit id ("" when creating, or for a document from before commit ids)
-- ARGV[20] commit id to store (the patch entry names it, and ARGV[19] as its parent)
-- ARGV[21] "1": update the indexes and publish the deal event here (one Redis primary);
--          "0": leave both to the store (Redis Cluster: they live in other slots)
-- Returns: {"dup", record} | {"conflict", rev, epoch, doc, commit} | {"ok", rev, epoch, commit}

local record = redis.call('GET', KEYS[3])
if record then
  return {'dup', record}
end

-- The document is read only on a conflict: a commit that lands returns no document.
local current = redis.call('HMGET', KEYS[1], 'rev', 'epoch', 'commit')
local rev = current[1] or '0'
local epoch = current[2] or ''
local head = current[3] or ''
if rev ~= ARGV[1] or epoch ~= ARGV[2] or head ~= ARGV[19] then
  return {'conflict', rev, epoch, redis.call('HGET', KEYS[1], 'doc') or '', head}
end

local kind = ARGV[15]
if kind == 'noop' then
  redis.call('SET', KEYS[3], ARGV[8], 'EX', ARGV[9])
  return {'ok', rev, epoch, head}
end

local id = ARGV[11]
local indexes = ARGV[21] == '1'
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
  return {'ok', ARGV[5], epoch, ARGV[20]}
end

-- Stream entry id "<revision>-1": XRANGE from "<r+1>-1" is exactly what a
-- client at revision r missed, and Redis refuses a revision out of order.
local every = tonumber(ARGV[16])
local keep_entries, keep_bytes = tonumber(ARGV[10]), tonumber(ARGV[18])
-- The log's size in bytes (values of its entries) is kept in the CIM hash ('logbytes').
local logbytes = tonumber(redis.call('HGET', KEYS[1], 'logbytes') or '0')
local function entry_bytes(entry)
  local n = 0
  for i = 2, #entry[2], 2 do
    n = n + string.len(entry[2][i])
  end
  return n
end
local function trim_below(min_rev)
  local gone = redis.call('XRANGE', KEYS[2], '-', '(' .. min_rev .. '-1')
  for _, entry in ipairs(gone) do
    logbytes = logbytes - entry_bytes(entry)
  end
  redis.call('XTRIM', KEYS[2], 'MINID', min_rev .. '-1')
end
if every == 0 then
  redis.call('XADD', KEYS[2], ARGV[5] .. '-1', 'p', ARGV[7])
  logbytes = logbytes + string.len(ARGV[7])
  -- Retention by entries and by bytes: drop the oldest entries until both bounds hold.
  local length = redis.call('XLEN', KEYS[2])
  local drop, after = 0, '-'
  while length - drop > 1 and (length - drop > keep_entries or logbytes > keep_bytes) do
    local oldest = redis.call('XRANGE', KEYS[2], after, '+', 'COUNT', 1)[1]
    logbytes = logbytes - entry_bytes(oldest)
    drop, after = drop + 1, '(' .. oldest[1]
  end
  if drop > 0 then
    redis.call('XTRIM', KEYS[2], 'MAXLEN', length - drop)
  end
else
  local new_rev = tonumber(ARGV[5])
  if new_rev == 1 or new_rev % every == 0 then
    redis.call('XADD', KEYS[2], ARGV[5] .. '-1', 'p', ARGV[7], 't', ARGV[6], 's', ARGV[4])
    logbytes = logbytes + string.len(ARGV[7]) + string.len(ARGV[6]) + string.len(ARGV[4])
  else
    redis.call('XADD', KEYS[2], ARGV[5] .. '-1', 'p', ARGV[7], 't', ARGV[6])
    logbytes = logbytes + string.len(ARGV[7]) + string.len(ARGV[6])
  end
  -- Size: keep from the newest snapshot that leaves at least ARGV[10] entries.
  local base = math.floor((new_rev - keep_entries + 1) / every) * every
  -- Age: also drop intervals whose next snapshot is already older than the cutoff.
  local max_age = tonumber(ARGV[17])
  if max_age > 0 and new_rev % every == 0 then
    local cutoff = tonumber(ARGV[6]) - max_age
    local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
    local s = math.max(base, math.floor(tonumber(string.match(first[1][1], '^(%d+)')) / every) * every) + every
    while s < new_rev do
      local e = redis.call('XRANGE', KEYS[2], s .. '-1', s .. '-1')
      local ts = #e > 0 and e[1][2][4] or nil
      if ts == nil or tonumber(ts) >= cutoff then
        break
      end
      base = s
      s = s + every
    end
  end
  if base > 1 then
    trim_below(base)
  end
  -- Bytes: drop whole snapshot intervals, oldest first, never the newest one.
  local newest = math.floor(new_rev / every) * every
  while logbytes > keep_bytes do
    local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
    local next_base = (math.floor(tonumber(string.match(oldest[1], '^(%d+)')) / every) + 1) * every
    if next_base > newest then
      break
    end
    trim_below(next_base)
  end
end
redis.call('HSET', KEYS[1], 'doc', ARGV[4], 'rev', ARGV[5], 'epoch', ARGV[3], 'commit', ARGV[20], 'logbytes', logbytes)
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
return {'ok', ARGV[5], ARGV[3], ARGV[20]}
