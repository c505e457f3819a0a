/**
 * A cluster node's run (cluster: in the configuration): after this node's
 * own logs are read and decided (pipeline.ts), its counted failures go to
 * Redis, the windows are evaluated over the failures of every node
 * (cluster/evaluate.ts), and the database is made to hold the cluster's
 * blocks: the firewall (desired.ts) then holds them with no change of its
 * own. Polling, never pub/sub: a node that was down catches up at its next
 * run.
 *
 * Nothing from Redis is trusted: a record that is no valid block of a
 * configured instance (cluster/records.ts), or that names what is never
 * blocked here (cluster-hold.ts), is skipped (and told once per run). Times in Redis are on Redis's clock; this node's
 * are converted by the difference measured at each run.
 *
 * When Redis cannot be reached the run is this node's alone: its failures
 * and successes wait in the database (`cluster.outbox`), its own blocks and
 * the cluster's last known ones stay in force, and one warning says so; the
 * next run that reaches Redis pushes them (each failure's identity makes a
 * second push of it a no-op). A block this node holds that Redis does not
 * (Redis restarted empty, a failover that lost writes, a block made while
 * Redis was away) is pushed again, unless Redis holds a tombstone of it
 * newer than the block (it was unblocked on another node).
 */
import {blockLength, isBlockActive} from '../decisions/decide.js'
import {ruleName, windowsOf} from '../decisions/windows.js'
import {NetworkWatch, neverBlockedIn} from '../decisions/networks.js'
import {ClusterClient, ClusterUnreachable, evictionProblem, type ClusterSession} from '../cluster/client.js'
import {clusterWindow, memberOf, tagOfMember} from '../cluster/evaluate.js'
import type {ClusterFeed} from '../cluster/feed.js'
import type {AccountAlert} from '../decisions/accounts.js'
import {cidrsOverlap, parseCidr} from '../net/ip.js'
import {entryAddressProblem} from '../store/values.js'
import {accountsOverCluster} from './cluster-accounts.js'
import {blockRecord, flushMarker, pairs, parseView, type BlockRecord} from '../cluster/records.js'
import {PUSH_KEYS} from '../cluster/scripts.js'
import type {Config} from '../config/config.js'
import {MAX_OUTBOX, type ClusterRecord, type StoreData} from '../store/schema.js'
import {whitelistOf, blockInfo, type BlockInfo} from './context.js'
import {clusterClock, entryFor, holdBlocks, holdWhitelist, newHeld, refusal, SAME_MS} from './cluster-hold.js'

export {ClusterFeed} from '../cluster/feed.js'

/** How long a tombstone (an unblock, a whitelist removal) is kept: every node runs within it. */
const TOMBSTONE_MS = 7 * 24 * 3600_000
/** How stale a node's record of when it last reached Redis may be. */
const SEEN_MS = 3600_000

export interface ClusterOutcome {
  warnings: string[]
  /** Blocks this node made over the cluster's failures (windows no node completed alone). */
  blocked: BlockInfo[]
  /** Blocks of other nodes this node now holds, each with the node that made it. */
  adopted: (BlockInfo & {node: string})[]
  /** Blocks lifted here because they were unblocked (or whitelisted) on another node. */
  lifted: BlockInfo[]
  /** Failures pushed to Redis by this run (its own and any that waited). */
  pushed: number
  /** Redis was reached. */
  reached: boolean
  /** The database was changed: the run must write it. */
  changed: boolean
  /** Accounts this node reported under attack over every node's failures (accountAlert). */
  accountAlerts: AccountAlert[]
}

function recordOf(data: StoreData): ClusterRecord {
  data.cluster ??= {outbox: [], successes: []}
  return data.cluster
}

/** Keeps at most MAX_OUTBOX of a list waiting for Redis, the newest; how many went. */
function capped<T>(list: T[]): number {
  const over = list.length - MAX_OUTBOX
  if (over > 0) list.splice(0, over)
  return Math.max(over, 0)
}

/**
 * Pushes this run's failures and successes (and any that waited) to Redis, blocks what the cluster's
 * windows complete, and makes `data` hold the cluster's blocks and whitelist. Never throws for Redis: an
 * unreachable one is a warning and the run stays this node's.
 */
export async function syncCluster(config: Config, data: StoreData, feed: ClusterFeed, now: number, session: ClusterSession): Promise<ClusterOutcome> {
  const cluster = config.cluster
  const out: ClusterOutcome = {warnings: [], blocked: [], adopted: [], lifted: [], pushed: 0, reached: false, changed: false, accountAlerts: []}
  if (cluster === undefined) return out
  if (data.cluster === undefined || feed.failures.length > 0 || feed.successes.length > 0) out.changed = true
  const rec = recordOf(data)
  rec.outbox.push(...feed.failures)
  rec.successes.push(...feed.successes)
  const dropped = capped(rec.outbox) + capped(rec.successes)
  if (dropped > 0) out.warnings.push(`cluster: ${dropped} failures and successes waiting for Redis were dropped (at most ${MAX_OUTBOX} wait); they counted on this node all the same`)
  try {
    const client = await session.client()
    await exchange(client, config, data, rec, now, out)
    out.reached = true
    const problem = evictionProblem(await client.memoryPolicy(), client.shown)
    if (problem !== null) out.warnings.push(problem)
  } catch (err) {
    if (!(err instanceof ClusterUnreachable)) throw err
    const waiting = rec.outbox.length
    out.warnings.push(
      `cluster: ${err.message}: this run counted and blocked on this node alone and keeps the blocks it knew${waiting > 0 ? `; ${waiting} failure(s) wait to be pushed at the next run that reaches Redis` : ''}`,
    )
  }
  return out
}

async function exchange(client: ClusterClient, config: Config, data: StoreData, rec: ClusterRecord, now: number, out: ClusterOutcome): Promise<void> {
  const cluster = config.cluster
  if (cluster === undefined) return
  const keys = client.keys
  const windows = windowsOf(config)
  // Redis's clock minus this host's: every time written there is on Redis's clock.
  const clock = clusterClock(await client.clockOffset(now))
  const {toRedis, fromRedis} = clock
  const redisTime = toRedis(now)
  const instances = config.instances.map((i) => i.name)
  const known = new Set(instances)

  // Failures and successes waiting from before a flush --cluster are forgotten with the rest.
  const marker = flushMarker((await client.call((r) => r.get(keys.flushed()))) ?? '')
  if (marker !== null) {
    rec.outbox = rec.outbox.filter((f) => toRedis(f.time) > marker.at)
    rec.successes = rec.successes.filter((f) => toRedis(f.time) > marker.at)
  }

  // Failures waiting of an address unblocked since on any node (a tombstone newer than them) are forgotten with it.
  for (const instance of instances) {
    const waiting = [...new Set(rec.outbox.filter((f) => f.instance === instance).map((f) => f.key))]
    if (waiting.length === 0) continue
    const got = await client.call((r) => r.hmget(keys.tombstones(instance), ...waiting))
    const unblocked = new Map<string, number>()
    waiting.forEach((key, i) => {
      const v = got[i]
      if (v !== null && v !== undefined && /^[0-9]{1,16}$/.test(v)) unblocked.set(key, Number(v))
    })
    if (unblocked.size > 0) rec.outbox = rec.outbox.filter((f) => f.instance !== instance || !(toRedis(f.time) <= (unblocked.get(f.key) ?? -Infinity)))
  }

  // Successes first: a window they relax is then relaxed on the cluster too.
  const successes = new Map<string, [string, string][]>()
  for (const s of rec.successes) {
    const list = successes.get(s.instance) ?? []
    list.push([s.key, String(toRedis(s.time))])
    successes.set(s.instance, list)
  }
  // Kept for the longest window: what a success can still relax.
  const successKeep = windows.longestMs + 120_000
  for (const [instance, list] of successes) await client.call((r) => r.rcSuccess(1, keys.successes(instance), redisTime, successKeep, ...list.flat()))

  // The failures, grouped by entry; each set comes back whole as it is after the update.
  const groups = new Map<string, {instance: string; key: string; members: [string, string][]}>()
  for (const f of rec.outbox) {
    const id = `${f.instance} ${f.key}`
    let g = groups.get(id)
    if (g === undefined) groups.set(id, (g = {instance: f.instance, key: f.key, members: []}))
    g.members.push([String(toRedis(f.time)), memberOf(f.id, f.tag)])
  }
  const keepMs = windows.longestMs + 120_000
  const sets = new Map<string, {times: number[]; tags: number[]; fresh: number[]}>()
  const list = [...groups.values()]
  // The batches are sent together (ioredis pipelines them on the one connection): Redis runs one while the next is built.
  const batches: (typeof list)[] = []
  for (let i = 0; i < list.length; i += PUSH_KEYS) batches.push(list.slice(i, i + PUSH_KEYS))
  const pushed = await Promise.all(
    batches.map((batch) => {
      const args: (string | number)[] = [redisTime, keepMs, 'NX']
      for (const g of batch) args.push(g.members.length, ...g.members.flat())
      return client.call((r) => r.rcPush(batch.length, ...batch.map((g) => keys.failures(g.instance, g.key)), ...args))
    }),
  )
  for (const [b, batch] of batches.entries()) {
    const got = pushed[b] ?? []
    batch.forEach((g, j) => {
      const mine = new Set(g.members.map((m) => m[1]))
      const set = {times: [] as number[], tags: [] as number[], fresh: [] as number[]}
      for (const [member, score] of pairs(got[j] ?? [])) {
        if (mine.has(member)) set.fresh.push(set.times.length)
        set.times.push(Number(score))
        set.tags.push(tagOfMember(member))
      }
      sets.set(`${g.instance} ${g.key}`, set)
    })
  }
  out.pushed = rec.outbox.length

  // The cluster as it is now (old records and tombstones forgotten in the same script), checked.
  const forgetMs = config.escalation.forgetDays * 86_400_000
  const readKeys = [...instances.flatMap((i) => [keys.blocks(i), keys.tombstones(i)]), keys.whitelist(), keys.whitelistRemoved(), keys.nodes(), keys.flushed()]
  const [redisNow, replies] = await client.call((r) => r.rcRead(readKeys.length, ...readKeys, redisTime, forgetMs, TOMBSTONE_MS, cluster.node))
  const view = parseView(instances, replies, redisNow)
  const held = newHeld()

  // The whitelist first: what it holds is never blocked by anything below; this node's own entries go to the cluster.
  holdWhitelist(data, view, clock, now, held)
  for (const w of held.unshared) {
    await client.call((r) => r.rcWhitelist(2, keys.whitelist(), keys.whitelistRemoved(), redisTime, '1', w.cidr, JSON.stringify({comment: w.comment, added: toRedis(w.added)})))
  }
  const never = whitelistOf(config, data)
  const inForce = (b: BlockRecord): boolean => b.till === -1 || b.till > redisNow

  // A block in Redis, made there once however many nodes find it at the same moment (CLAIM keeps the first).
  const settings = {blockMs: config.blockMinutes * 60_000, factor: config.escalation.factor, maxMs: config.escalation.maxMinutes * 60_000}
  const claim = async (instance: string, key: string, at: number, rule: string, comment: string | null, minutes?: number, window = keys.failures(instance, key)): Promise<BlockRecord | null> => {
    const blockMs = minutes === undefined ? settings.blockMs : minutes * 60_000
    const text = await client.call((r) =>
      r.rcClaim(3, keys.blocks(instance), window, keys.tombstones(instance), redisTime, key, at, rule, cluster.node, blockMs, minutes === undefined ? settings.factor : 1, settings.maxMs, forgetMs, '0', comment ?? ''),
    )
    const r = blockRecord(text)
    if (typeof r === 'string') return null
    view.blocks.set(`${instance} ${key}`, r)
    view.tombs.delete(`${instance} ${key}`)
    return r
  }
  const decided = (instance: string, key: string, at: number, rule: string, made: BlockRecord | null, failures?: number): void => {
    if (made === null || made.node !== cluster.node || made.at !== at) return
    out.changed = true
    const e = entryFor(data, instance, key, fromRedis(at))
    out.blocked.push({...blockInfo(e), blockedAt: fromRedis(made.at), blockedUntil: made.till === -1 ? null : fromRedis(made.till), rule, ...(failures === undefined ? {} : {failures})})
  }

  // The windows over every node's failures (this node's alone were decided by the Decider already).
  const successOf = new Map<string, number>()
  for (const instance of instances) {
    const touched = list.filter((g) => g.instance === instance).map((g) => g.key)
    if (touched.length === 0) continue
    const got = await client.call((r) => r.rcScores(1, keys.successes(instance), ...touched))
    touched.forEach((key, i) => {
      const v = got[i]
      if (typeof v === 'string' && /^[0-9]{1,16}$/.test(v)) successOf.set(`${instance} ${key}`, Number(v))
    })
  }
  // What this node blocks already (its own Decider, this run or before): pushed below as its own block, not claimed again here.
  const local = new Set(data.entries.filter((e) => isBlockActive(e, now)).map((e) => `${e.instance} ${e.ip}`))
  for (const [id, set] of sets) {
    const [instance, key] = id.split(' ') as [string, string]
    const b = view.blocks.get(id)
    if ((b !== undefined && inForce(b)) || local.has(id) || refusal(key, never) !== null) continue
    // Only failures after the key's last block ended count, and with resetOnSuccess only those after its last success.
    const success = successOf.get(id) ?? null
    const ended = b === undefined ? -Infinity : b.till === -1 ? Infinity : b.till
    const since = config.resetOnSuccess && success !== null ? Math.max(ended, success) : ended
    const w = clusterWindow(windows, set, set.fresh, since, success)
    if (w === null) continue
    const length = blockLength(config, b?.n ?? 0)
    // A window completed so long ago that its block would be over: nothing to do (old lines read late).
    if (length !== 0 && w.at + length * 60_000 <= redisNow) continue
    decided(instance, key, w.at, w.rule, await claim(instance, key, w.at, w.rule, null), w.failures)
  }

  // networkBlock over every node's failures: distinct addresses of a network within the period.
  const nb = config.networkBlock
  if (nb !== undefined && rec.outbox.length > 0) {
    const watch = new NetworkWatch([], nb, neverBlockedIn(never))
    const nets = new Map<string, {instance: string; network: string; members: Map<string, number>}>()
    for (const f of rec.outbox) {
      const as = watch.countedAs(f.key)
      if (as === null) continue
      const id = `${f.instance} ${as.network}`
      let g = nets.get(id)
      if (g === undefined) nets.set(id, (g = {instance: f.instance, network: as.network, members: new Map()}))
      const t = toRedis(f.time)
      if (!((g.members.get(as.member) ?? -Infinity) >= t)) g.members.set(as.member, t)
    }
    const periodMs = nb.periodMinutes * 60_000
    const rule = ruleName('network', nb.minAddresses, nb.periodMinutes)
    const all = [...nets.values()]
    for (let i = 0; i < all.length; i += PUSH_KEYS) {
      const batch = all.slice(i, i + PUSH_KEYS)
      const args: (string | number)[] = [redisTime, periodMs + 120_000, 'GT']
      for (const g of batch) args.push(g.members.size, ...[...g.members].flatMap(([m, t]) => [String(t), m]))
      const got = await client.call((r) => r.rcPush(batch.length, ...batch.map((g) => keys.network(g.instance, g.network)), ...args))
      for (const [j, g] of batch.entries()) {
        const b = view.blocks.get(`${g.instance} ${g.network}`)
        if ((b !== undefined && inForce(b)) || local.has(`${g.instance} ${g.network}`) || neverBlockedIn(never)(g.network) !== null) continue
        // The window ending at this push's newest failure of the network.
        const at = Math.max(...g.members.values())
        const since = b === undefined ? -Infinity : b.till === -1 ? Infinity : b.till
        // The network's addresses (or /64s) in the window; a member that is none of its addresses (planted) counts for nothing.
        const net = parseCidr(g.network)
        const count = pairs(got[j] ?? []).filter(([member, score]) => {
          const c = entryAddressProblem(member) === null ? parseCidr(member) : null
          return c !== null && net !== null && cidrsOverlap(c, net) && Number(score) >= at - periodMs && Number(score) <= at && Number(score) > since
        }).length
        if (count < nb.minAddresses) continue
        const length = blockLength(config, b?.n ?? 0)
        if (length !== 0 && at + length * 60_000 <= redisNow) continue
        decided(g.instance, g.network, at, rule, await claim(g.instance, g.network, at, rule, null, undefined, keys.network(g.instance, g.network)))
      }
    }
  }

  // accountAlert over every node's failures: distinct addresses failing on one account, reported once.
  const aa = config.accountAlert
  if (aa !== undefined) await accountsOverCluster(client, config, data, rec, {redisTime, toRedis, fromRedis, view, never, claim, out, local})

  // This node's blocks in force that Redis does not hold: lifted when Redis has a newer tombstone, pushed otherwise.
  // A node away longer than tombstones are kept cannot tell a block lifted meanwhile from one Redis lost: its
  // blocks from before it went away are the cluster's to keep, and they go here.
  const away = rec.seen !== undefined && redisNow - rec.seen > TOMBSTONE_MS ? rec.seen : null
  for (const e of [...data.entries]) {
    if (!isBlockActive(e, now) || !known.has(e.instance)) continue
    const id = `${e.instance} ${e.ip}`
    const b = view.blocks.get(id)
    if (b !== undefined && inForce(b)) continue
    const tomb = view.tombs.get(id)
    if (tomb !== undefined && tomb >= toRedis(e.blockedAt ?? 0)) continue // lifted by holdBlocks
    if (away !== null && toRedis(e.blockedAt ?? 0) <= away) {
      out.lifted.push(blockInfo(e))
      data.entries = data.entries.filter((x) => x !== e)
      out.changed = true
      continue
    }
    if (b !== undefined && b.at >= toRedis(e.blockedAt ?? 0) - SAME_MS) continue // the cluster's block of it ended, or was shortened: its record rules
    if (refusal(e.ip, never) !== null) continue
    const minutes = e.blockedUntil === null ? 0 : Math.max(1 / 60, (e.blockedUntil - (e.blockedAt ?? now)) / 60_000)
    await claim(e.instance, e.ip, toRedis(e.blockedAt ?? now), e.rule ?? (e.comment !== null ? 'hand' : `failures:${config.maxAttempts}/${config.periodMinutes}`), e.comment, e.rule === 'hand' ? minutes : undefined)
  }

  // The database holds the cluster's blocks in force, and lets go of what was unblocked elsewhere.
  holdBlocks(config, data, view, clock, now, held)
  if (held.changed || rec.outbox.length > 0 || rec.successes.length > 0) out.changed = true
  out.adopted.push(...held.adopted)
  out.lifted.push(...held.lifted)
  const skipped = [...view.skipped, ...held.skipped]
  if (skipped.length > 0) out.warnings.push(`cluster: ${skipped.length} record(s) in Redis not taken: ${skipped.slice(0, 3).join('; ')}${skipped.length > 3 ? ' …' : ''}`)
  rec.outbox = []
  rec.successes = []
  // Kept to the hour, so that a run with nothing new does not rewrite the database for it.
  if (rec.seen === undefined || redisNow - rec.seen > SEEN_MS || redisNow < rec.seen) {
    rec.seen = redisNow
    out.changed = true
  }
}

/**
 * Before a cluster node decides its own lines: the successful logins the cluster holds that the windows
 * can still look at (every node's, on this host's clock), so that a success seen on another node relaxes
 * this node's windows as one seen here does. Keyed `<instance> <key>`. Redis unreachable: none (the run's
 * exchange afterwards tells it).
 */
export async function clusterSuccesses(config: Config, now: number, session: ClusterSession): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const cluster = config.cluster
  if (cluster === undefined || (config.windows.length === 0 && !config.resetOnSuccess)) return out
  try {
    const client = await session.client()
    const offset = await client.clockOffset(now)
    const instances = config.instances.map((i) => i.name)
    const since = now + offset - windowsOf(config).longestMs - 120_000
    const got = await client.call((r) => r.rcRecent(instances.length, ...instances.map((i) => client.keys.successes(i)), since))
    instances.forEach((instance, i) => {
      for (const [key, score] of pairs(got[i] ?? [])) {
        if (entryAddressProblem(key) === null && /^[0-9]{1,16}$/.test(score)) out.set(`${instance} ${key}`, Number(score) - offset)
      }
    })
  } catch (err) {
    if (!(err instanceof ClusterUnreachable)) throw err
  }
  return out
}
