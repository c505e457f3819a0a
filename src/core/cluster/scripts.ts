/**
 * The Lua scripts that change rcguard's keys in Redis. Each runs atomically
 * (Redis runs one script at a time), takes the time as its first argument,
 * on Redis's clock (one clock for every node), and names every key it touches in KEYS.
 *
 * Keys, under the configured prefix P (keys.ts builds them):
 *   P f:<instance>:<key>  sorted set: one member per failure, `<identity>|<tag>`, scored by its time
 *                         (Redis clock, ms); the identity (node, file, offset) makes a re-read a no-op.
 *   P n:<instance>:<net>  sorted set (networkBlock): the addresses of a network that failed, each scored by
 *                         its newest failure (PUSH with GT).
 *   P a:<instance>:<acct> sorted set (accountAlert): one member per failure on the account (the hash of its
 *                         name), `<identity>|<address>`, scored by its time.
 *   P r:<instance>:<acct> string: the account's episode as reported (JSON: at, last, node, account), so an
 *                         attack is reported once however many nodes see it.
 *   P s:<instance>        sorted set: key, scored by its newest successful login (relaxes the windows
 *                         but the first; with resetOnSuccess, failures before it count no more).
 *   P b:<instance>        hash: key → its block record (JSON: at, till (-1: until deleted), rule, node,
 *                         n: how many blocks it has had, c: an optional comment), kept after the block
 *                         ends for escalation until forgotten.
 *   P u:<instance>        hash: key → when it was unblocked (a tombstone: nodes lift their copy).
 *   P w / P wu            hashes: the admins' whitelist (cidr → JSON), and its removals (cidr → time).
 *   P nodes               hash: node → when it last ran (ms).
 *   P flushed             string: the last `rcguard flush --cluster` (JSON: at, all): every node drops the
 *                         blocks (and with all, the whitelist entries) it holds from before it.
 */

/** Keys pushed per script call (a script holds Redis while it runs). */
export const PUSH_KEYS = 256

/**
 * The time of the change, the first argument of every script: the node's clock moved onto Redis's (the
 * difference measured with TIME at the start of the run, cluster-sync.ts), so that every node's times are on
 * one clock.
 */
const NOW = `local now = tonumber(ARGV[1])`

/**
 * PUSH: KEYS = the sorted sets of the keys pushed; ARGV = now, keepMs, how a member seen before keeps its
 * score (NX: its first, for failures named by their identity; GT: its newest, for a network's addresses),
 * then per key its count and that many (score, member) pairs. Drops the members older than keepMs before
 * the newest, sets the key to expire a while after the push, and returns each set whole (member, score, …) as
 * it is after the update.
 */
export const PUSH = `${NOW}
local keep = tonumber(ARGV[2])
local mode = ARGV[3]
if mode ~= 'NX' and mode ~= 'GT' then return redis.error_reply('mode') end
local at = 4
local out = {}
for i, key in ipairs(KEYS) do
  local n = tonumber(ARGV[at])
  at = at + 1
  for j = 1, n do
    redis.call('ZADD', key, mode, ARGV[at], ARGV[at + 1])
    at = at + 2
  end
  -- Kept: what a window up to the newest member can hold (as one node keeps an entry's failures), so that
  -- failures pushed late (a node, or Redis, away for a while) still meet the others of their time; the set
  -- goes a while after its last push.
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if newest[2] ~= nil then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. tostring(tonumber(newest[2]) - keep))
    redis.call('PEXPIRE', key, keep + 60000)
  end
  out[i] = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
end
return out`

/**
 * REPORT: KEYS[1] = the account's report; ARGV = now, at (the failure that completed the window), last (the
 * newest failure on the account), periodMs, node, account, keepMs. An episode reported before whose last
 * failure is within periodMs of `at` is the same episode: its last failure moves on, and 0 is returned (and
 * the record). Otherwise this is a new report, made by this node: 1.
 */
export const REPORT = `${NOW}
local raw = redis.call('GET', KEYS[1])
local at = tonumber(ARGV[2])
local last = tonumber(ARGV[3])
if raw then
  local ok, rec = pcall(cjson.decode, raw)
  if ok and type(rec) == 'table' and type(rec.last) == 'number' and at <= rec.last + tonumber(ARGV[4]) then
    if last > rec.last then rec.last = last end
    local text = cjson.encode(rec)
    redis.call('SET', KEYS[1], text, 'PX', tonumber(ARGV[7]))
    return {0, text}
  end
end
local text = cjson.encode({at = at, last = last, node = ARGV[5], account = ARGV[6]})
redis.call('SET', KEYS[1], text, 'PX', tonumber(ARGV[7]))
return {1, text}`

/**
 * SUCCESS: KEYS[1] = the successes' sorted set (key, scored by its newest success); ARGV = now, keepMs, then
 * key, time pairs. Keeps the newest time per key (GT), drops those older than keepMs before now. A key of
 * another type under rcguard's name (not rcguard's) is replaced.
 */
export const SUCCESS = `${NOW}
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'zset' and t ~= 'none' then redis.call('DEL', KEYS[1]) end
for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'GT', ARGV[i + 1], ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. tostring(now - tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 60000)
return 1`

/** RECENT: KEYS = the successes' sorted sets; ARGV = since. Each set's keys with a success since then (none for a key of another type). */
export const RECENT = `local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('TYPE', key).ok == 'zset' then out[i] = redis.call('ZRANGEBYSCORE', key, ARGV[1], '+inf', 'WITHSCORES') else out[i] = {} end
end
return out`

/** SCORES: KEYS[1] = the successes' sorted set; ARGV = keys. Their newest successes (false: none); none for a key of another type. */
export const SCORES = `if redis.call('TYPE', KEYS[1]).ok ~= 'zset' then return {} end
return redis.call('ZMSCORE', KEYS[1], unpack(ARGV))`

/**
 * CLAIM: KEYS = blocks hash, the key's failure set, tombstones hash; ARGV = now, key, at, rule, node, blockMs
 * (0: until deleted), factor, maxMs, forgetMs, force (1: a block by hand, made even over one in force),
 * comment. A block in force is kept as it is (two nodes deciding the same block make one) unless forced;
 * otherwise its length grows with the key's earlier blocks (forgotten forgetMs after the last one ended),
 * its failures up to `at` are dropped, and a tombstone of it is removed. Returns the record in force.
 */
export const CLAIM = `${NOW}
local raw = redis.call('HGET', KEYS[1], ARGV[2])
local rec = nil
-- A record of another shape (not rcguard's) is as none: replaced.
if raw then
  local ok, r = pcall(cjson.decode, raw)
  if ok and type(r) == 'table' and type(r.at) == 'number' and type(r.till) == 'number' and (r.n == nil or type(r.n) == 'number') then rec = r end
end
local force = ARGV[10] == '1'
if rec and not force and rec.at > 0 and (rec.till == -1 or rec.till > now) then return raw end
local n = 0
if rec then
  n = rec.n or 0
  local ended = rec.till
  if ended ~= -1 and ended + tonumber(ARGV[9]) < now then n = 0 end
end
local at = tonumber(ARGV[3])
local blockMs = tonumber(ARGV[6])
local till = -1
if blockMs > 0 then
  local length = blockMs
  local factor = tonumber(ARGV[7])
  if factor > 1 and n > 0 then
    length = math.min(blockMs * factor ^ math.min(n, 64), math.max(tonumber(ARGV[8]), blockMs))
  end
  till = at + math.floor(length)
end
local made = {at = at, till = till, rule = ARGV[4], node = ARGV[5], n = n + 1}
if ARGV[11] ~= '' then made.c = ARGV[11] end
local text = cjson.encode(made)
redis.call('HSET', KEYS[1], ARGV[2], text)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', at)
redis.call('HDEL', KEYS[3], ARGV[2])
return text`

/**
 * UNBLOCK: KEYS = blocks hash, the key's failure set, successes set, tombstones hash; ARGV = now, key. Forgets
 * the key (its block, history, failures) and leaves a tombstone, so every node lifts its copy. Returns 1 when
 * there was a record.
 */
export const UNBLOCK = `${NOW}
local had = redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
pcall(redis.call, 'ZREM', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2], now)
return had`

/**
 * READ: KEYS = per instance its blocks hash then its tombstones hash, then the whitelist and its removals,
 * the nodes hash and the flush marker; ARGV = now, forgetMs, tombstoneMs, node. Forgets block records whose last block ended
 * more than forgetMs ago and tombstones older than tombstoneMs (checked and removed in the one script, so a
 * block claimed meanwhile is never lost), records that the node ran, and returns Redis's time and every hash.
 */
export const READ = `${NOW}
local forget = tonumber(ARGV[2])
local tomb = tonumber(ARGV[3])
local out = {}
local k = #KEYS - 4
for i = 1, k, 2 do
  local recs = redis.call('HGETALL', KEYS[i])
  local keep = {}
  for j = 1, #recs, 2 do
    local ok, rec = pcall(cjson.decode, recs[j + 1])
    if ok and type(rec) == 'table' and type(rec.till) == 'number' and rec.till ~= -1 and rec.till + forget < now then
      redis.call('HDEL', KEYS[i], recs[j])
    else
      keep[#keep + 1] = recs[j]
      keep[#keep + 1] = recs[j + 1]
    end
  end
  out[#out + 1] = keep
  local tombs = redis.call('HGETALL', KEYS[i + 1])
  local live = {}
  for j = 1, #tombs, 2 do
    if (tonumber(tombs[j + 1]) or 0) + tomb < now then
      redis.call('HDEL', KEYS[i + 1], tombs[j])
    else
      live[#live + 1] = tombs[j]
      live[#live + 1] = tombs[j + 1]
    end
  end
  out[#out + 1] = live
end
out[#out + 1] = redis.call('HGETALL', KEYS[k + 1])
out[#out + 1] = redis.call('HGETALL', KEYS[k + 2])
redis.call('HSET', KEYS[k + 3], ARGV[4], now)
out[#out + 1] = {redis.call('GET', KEYS[k + 4]) or ''}
return {now, out}`

/** WHITELIST: KEYS = whitelist hash, removals hash; ARGV = now, add (1) or remove (0), cidr, JSON record. */
export const WHITELIST = `${NOW}
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
  redis.call('HDEL', KEYS[2], ARGV[3])
  return 1
end
local had = redis.call('HDEL', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], now)
return had`
