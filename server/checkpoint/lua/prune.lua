-- checkpoint_prune.lua: keep the newest checkpoints of each namespace, drop the rest.
--
-- In one atomic step, per namespace: keeps the newest ARGV[2] checkpoints and
-- the ones listed in ARGV[3..] (the parent chain a DeltaChannel replays),
-- deletes every other checkpoint with its pending writes, deletes early writes
-- older than the oldest kept checkpoint (newer ones may belong to a checkpoint
-- on its way), then deletes the channel values no kept checkpoint reads.
--
-- KEYS[1]  <base>ns   KEYS[2]  <base>runs
-- ARGV[1]  <base>     ARGV[2]  how many of the newest checkpoints to keep (>= 1)
-- ARGV[3..] "<ns>\31<id>" of further checkpoints to keep
-- Returns  run ids that no longer have a checkpoint in the thread

local base = ARGV[1]
local keep = tonumber(ARGV[2])
local pinned = {}
for i = 3, #ARGV do
  pinned[ARGV[i]] = true
end
local gone = {}
local function note(run)
  if run then
    gone[#gone + 1] = run
  end
end
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local kept = 0
  local oldest = nil
  for _, id in ipairs(redis.call('ZREVRANGEBYLEX', base .. 'ids:' .. ns, '+', '-')) do
    local exists = redis.call('HEXISTS', base .. 'c:' .. ns .. ':' .. id, 'c') == 1
    if exists and kept < keep then
      kept = kept + 1
      oldest = id
    elseif exists and pinned[ns .. US .. id] then
      oldest = id
    else
      note(drop_checkpoint(base, ns, id))
    end
  end
  if oldest then
    for _, id in ipairs(redis.call('SMEMBERS', base .. 'early:' .. ns)) do
      if bytes_less(id, oldest) then
        note(drop_checkpoint(base, ns, id))
      end
    end
  end
  collect_blobs(base, ns)
end
return gone
