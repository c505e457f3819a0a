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
 * configured instance, or that names what is never blocked here, is skipped
 * (and told once per run). Times in Redis are on Redis's clock; this node's
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
import {statSync} from 'node:fs'
import {blockLength, isBlockActive, newEntry, type Decision, type SourcedEvent} from '../decisions/decide.js'
import {nameTag, ruleName, windowsOf} from '../decisions/windows.js'
import {NetworkWatch, neverBlockedIn} from '../decisions/networks.js'
import {ClusterClient, ClusterUnreachable, evictionProblem} from '../cluster/client.js'
import {clusterWindow, memberOf, tagOfMember} from '../cluster/evaluate.js'
import type {Config} from '../config/config.js'
import {escapeText} from '../text/escape.js'
import {cidrsOverlap, parseCidr} from '../net/ip.js'
import {entryAddressProblem, MAX_TIME, whitelistCidrProblem} from '../store/values.js'
import {MAX_OUTBOX, type ClusterRecord, type Entry, type StoreData} from '../store/schema.js'
import {neverBlockReason, neverBlockOverlap} from '../decisions/decide.js'
import {whitelistOf, blockInfo, type BlockInfo} from './context.js'

/** Failures pushed per script call (a script blocks Redis while it runs). */
const PUSH_KEYS = 256
/** Block times that differ by at most this are the same block (the clock difference is measured at each run). */
const SAME_MS = 60_000
/** How long a tombstone (an unblock, a whitelist removal) is kept: every node runs within it. */
const TOMBSTONE_MS = 7 * 24 * 3600_000

/** What scanInto collects for the cluster: this run's counted failures and successes, with their identity. */
export class ClusterFeed {
  readonly failures: ClusterRecord['outbox'] = []
  readonly successes: ClusterRecord['successes'] = []
  private readonly files = new Map<string, string>()

  constructor(private readonly node: string) {}

  /** Takes the failure a decision counted against an entry (not one inside a blocked network, nor a twin line). */
  add(event: SourcedEvent, decision: Decision, offset: number | undefined): void {
    const key = decision.key
    if (key === undefined || decision.inside === true) return
    if (event.outcome === 'failure' && (decision.action === 'counted' || decision.action === 'blocked')) {
      this.failures.push({instance: event.instance, key, time: event.time, tag: nameTag(event.user), id: this.identity(event, offset)})
    }
  }

  /** A successful login from an address that has an entry (it relaxes the windows but the first, on every node). */
  success(event: SourcedEvent, key: string): void {
    this.successes.push({instance: event.instance, key, time: event.time})
  }

  /** node : file (device and inode: the same after a rename) : the line's byte offset (its number when not known). */
  private identity(event: SourcedEvent, offset: number | undefined): string {
    let file = this.files.get(event.file)
    if (file === undefined) {
      try {
        const st = statSync(event.file, {bigint: true})
        file = `${st.dev.toString(36)}.${st.ino.toString(36)}`
      } catch {
        file = escapeText(event.file, {max: 120})
      }
      this.files.set(event.file, file)
    }
    return `${this.node}:${file}:${offset !== undefined && offset >= 0 ? `o${offset}` : `l${event.lineNo}`}`
  }
}

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
}

interface BlockRecord {
  at: number
  till: number
  rule: string
  node: string
  n: number
  c?: string
}

/** A block record from Redis, or why it is not one rcguard would write. */
function blockRecord(text: string): BlockRecord | string {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return 'not JSON'
  }
  if (typeof raw !== 'object' || raw === null) return 'not a record'
  const r = raw as Record<string, unknown>
  const time = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_TIME
  if (!time(r.at) || !(r.till === -1 || time(r.till)) || typeof r.rule !== 'string' || !/^(?:hand|[a-z]+:[0-9]+\/[0-9.]+)$/.test(r.rule)) return 'not a block record'
  if (typeof r.node !== 'string' || r.node.length > 64 || typeof r.n !== 'number' || !Number.isInteger(r.n) || r.n < 1 || r.n > 1e6) return 'not a block record'
  const c = typeof r.c === 'string' ? escapeText(r.c, {max: 200}) : undefined
  return {at: r.at, till: r.till as number, rule: r.rule, node: r.node, n: r.n, ...(c === undefined ? {} : {c})}
}

/** The flush marker (P flushed), or null: none, or not one rcguard writes. */
function flushMarker(text: string): {at: number; all: boolean} | null {
  if (text === '') return null
  try {
    const r = JSON.parse(text) as {at?: unknown; all?: unknown}
    if (typeof r.at === 'number' && Number.isInteger(r.at) && r.at >= 0 && r.at <= MAX_TIME) return {at: r.at, all: r.all === true}
  } catch {
    // not ours: ignored
  }
  return null
}

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = []
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string])
  return out
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
export async function syncCluster(config: Config, data: StoreData, feed: ClusterFeed, now: number): Promise<ClusterOutcome> {
  const cluster = config.cluster
  const out: ClusterOutcome = {warnings: [], blocked: [], adopted: [], lifted: [], pushed: 0, reached: false}
  if (cluster === undefined) return out
  const rec = recordOf(data)
  rec.outbox.push(...feed.failures)
  rec.successes.push(...feed.successes)
  const dropped = capped(rec.outbox) + capped(rec.successes)
  if (dropped > 0) out.warnings.push(`cluster: ${dropped} failures and successes waiting for Redis were dropped (at most ${MAX_OUTBOX} wait); they counted on this node all the same`)
  let client: ClusterClient | null = null
  try {
    client = await ClusterClient.connect(cluster)
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
  } finally {
    await client?.close()
  }
  return out
}

async function exchange(client: ClusterClient, config: Config, data: StoreData, rec: ClusterRecord, now: number, out: ClusterOutcome): Promise<void> {
  const cluster = config.cluster
  if (cluster === undefined) return
  const keys = client.keys
  const windows = windowsOf(config)
  // Redis's clock minus this host's: every time written there is on Redis's clock.
  const offset = await client.clockOffset(now)
  const redisTime = now + offset
  const toRedis = (t: number): number => t + offset
  const fromRedis = (t: number): number => t - offset
  const instances = config.instances.map((i) => i.name)
  const known = new Set(instances)

  // Failures and successes waiting from before a flush --cluster are forgotten with the rest.
  const marker = flushMarker((await client.call((r) => r.get(keys.flushed()))) ?? '')
  if (marker !== null) {
    rec.outbox = rec.outbox.filter((f) => toRedis(f.time) > marker.at)
    rec.successes = rec.successes.filter((f) => toRedis(f.time) > marker.at)
  }

  // Successes first: a window they relax is then relaxed on the cluster too.
  const successes = new Map<string, [string, string][]>()
  for (const s of rec.successes) {
    const list = successes.get(s.instance) ?? []
    list.push([s.key, String(toRedis(s.time))])
    successes.set(s.instance, list)
  }
  for (const [instance, list] of successes) await client.call((r) => r.rcSuccess(1, keys.successes(instance), redisTime, ...list.flat()))

  // The failures, grouped by entry; each set comes back whole as it is after the update.
  const groups = new Map<string, {instance: string; key: string; members: [string, string][]}>()
  for (const f of rec.outbox) {
    const id = `${f.instance} ${f.key}`
    let g = groups.get(id)
    if (g === undefined) {
      g = {instance: f.instance, key: f.key, members: []}
      groups.set(id, g)
    }
    g.members.push([String(toRedis(f.time)), memberOf(f.id, f.tag)])
  }
  const keepMs = windows.longestMs + 120_000
  const sets = new Map<string, {times: number[]; tags: number[]; fresh: number[]}>()
  const list = [...groups.values()]
  for (let i = 0; i < list.length; i += PUSH_KEYS) {
    const batch = list.slice(i, i + PUSH_KEYS)
    const args: (string | number)[] = [redisTime, keepMs]
    for (const g of batch) args.push(g.members.length, ...g.members.flat())
    const [, got] = await client.call((r) => r.rcPush(batch.length, ...batch.map((g) => keys.failures(g.instance, g.key)), ...args))
    batch.forEach((g, j) => {
      const flat = got[j] ?? []
      const mine = new Set(g.members.map((m) => m[1]))
      const set = {times: [] as number[], tags: [] as number[], fresh: [] as number[]}
      for (const [member, score] of pairs(flat)) {
        if (mine.has(member)) set.fresh.push(set.times.length)
        set.times.push(Number(score))
        set.tags.push(tagOfMember(member))
      }
      sets.set(`${g.instance} ${g.key}`, set)
    })
  }
  out.pushed = rec.outbox.length

  // The cluster as it is now: blocks, tombstones, the whitelist and its removals.
  const forgetMs = config.escalation.forgetDays * 86_400_000
  const readKeys = [...instances.flatMap((i) => [keys.blocks(i), keys.tombstones(i)]), keys.whitelist(), keys.whitelistRemoved(), keys.nodes(), keys.flushed()]
  const [redisNow, hashes] = await client.call((r) => r.rcRead(readKeys.length, ...readKeys, redisTime, forgetMs, TOMBSTONE_MS, cluster.node))
  const blocks = new Map<string, BlockRecord>()
  const tombs = new Map<string, number>()
  const skipped: string[] = []
  instances.forEach((instance, i) => {
    for (const [key, text] of pairs(hashes[2 * i] ?? [])) {
      const problem = entryAddressProblem(key)
      const r = problem === null ? blockRecord(text) : problem
      if (typeof r === 'string') skipped.push(`${escapeText(key, {max: 60})} (${r})`)
      else blocks.set(`${instance} ${key}`, r)
    }
    for (const [key, t] of pairs(hashes[2 * i + 1] ?? [])) if (/^[0-9]{1,16}$/.test(t)) tombs.set(`${instance} ${key}`, Number(t))
  })
  // rcguard flush --cluster: what this node holds from before it goes, as flush makes a node forget.
  const flushed = flushMarker(hashes[2 * instances.length + 2]?.[0] ?? '')
  if (flushed !== null) {
    const before = (t: number | null): boolean => t !== null && toRedis(t) <= flushed.at
    const gone = data.entries.filter((e) => e.blockedAt !== null && before(e.blockedAt))
    for (const e of gone) if (isBlockActive(e, now)) out.lifted.push(blockInfo(e))
    if (gone.length > 0) data.entries = data.entries.filter((e) => !gone.includes(e))
    if (flushed.all) data.whitelist = data.whitelist.filter((w) => !before(w.added))
  }
  const wl = pairs(hashes[2 * instances.length] ?? [])
  const wlRemoved = new Map(pairs(hashes[2 * instances.length + 1] ?? []).filter(([, t]) => /^[0-9]{1,16}$/.test(t)).map(([c, t]) => [c, Number(t)]))

  // The whitelist first: what it holds is never blocked by anything below.
  await syncWhitelist(client, data, rec, wl, wlRemoved, {toRedis, fromRedis, now}, out)
  const never = whitelistOf(config, data)
  const inForce = (b: BlockRecord): boolean => b.till === -1 || b.till > redisNow
  const refused = (key: string): string | null => (key.includes('/') ? neverBlockOverlap(key, never) : neverBlockReason(key, never))

  // Windows the cluster's failures complete (this node's alone were decided by the Decider already).
  const settings = {blockMs: config.blockMinutes * 60_000, factor: config.escalation.factor, maxMs: config.escalation.maxMinutes * 60_000}
  const claim = async (instance: string, key: string, at: number, rule: string, force: boolean, comment: string | null, minutes?: number, window = keys.failures(instance, key)): Promise<BlockRecord | null> => {
    const blockMs = minutes === undefined ? settings.blockMs : minutes * 60_000
    const text = await client.call((r) =>
      r.rcClaim(3, keys.blocks(instance), window, keys.tombstones(instance), redisTime, key, at, rule, cluster.node, blockMs, minutes === undefined ? settings.factor : 1, settings.maxMs, forgetMs, force ? '1' : '0', comment ?? ''),
    )
    const r = blockRecord(text)
    if (typeof r === 'string') return null
    blocks.set(`${instance} ${key}`, r)
    tombs.delete(`${instance} ${key}`)
    return r
  }
  const successOf = new Map<string, number>()
  for (const instance of instances) {
    const touched = [...groups.values()].filter((g) => g.instance === instance).map((g) => g.key)
    if (touched.length === 0) continue
    const got = await client.call((r) => r.hmget(keys.successes(instance), ...touched))
    touched.forEach((key, i) => {
      const v = got[i]
      if (v !== null && v !== undefined && /^[0-9]{1,16}$/.test(v)) successOf.set(`${instance} ${key}`, Number(v))
    })
  }
  for (const [id, set] of sets) {
    const [instance, key] = id.split(' ') as [string, string]
    const b = blocks.get(id)
    if (b !== undefined && inForce(b)) continue
    if (refused(key) !== null) continue
    const w = clusterWindow(windows, set, set.fresh, b === undefined ? -Infinity : b.till === -1 ? Infinity : b.till, successOf.get(id) ?? null)
    if (w === null) continue
    const length = blockLength(config, b?.n ?? 0)
    // A window completed so long ago that its block would be over: nothing to do (old lines read late).
    if (length !== 0 && w.at + length * 60_000 <= redisNow) continue
    const made = await claim(instance, key, w.at, w.rule, false, null)
    if (made !== null && made.node === cluster.node && made.at === w.at) {
      out.blocked.push({...blockInfo(entryFor(data, instance, key, fromRedis(w.at))), blockedAt: fromRedis(made.at), blockedUntil: made.till === -1 ? null : fromRedis(made.till), rule: w.rule, failures: w.failures})
    }
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
    const groupsOf = [...nets.values()]
    for (let i = 0; i < groupsOf.length; i += PUSH_KEYS) {
      const batch = groupsOf.slice(i, i + PUSH_KEYS)
      const args: (string | number)[] = [redisTime, periodMs + 120_000]
      for (const g of batch) args.push(g.members.size, ...[...g.members].flatMap(([m, t]) => [String(t), m]))
      const got = await client.call((r) => r.rcNetworks(batch.length, ...batch.map((g) => keys.network(g.instance, g.network)), ...args))
      for (const [j, g] of batch.entries()) {
        const id = `${g.instance} ${g.network}`
        const b = blocks.get(id)
        if ((b !== undefined && inForce(b)) || neverBlockedIn(never)(g.network) !== null) continue
        // The window ending at this push's newest failure of the network.
        const at = Math.max(...g.members.values())
        const since = b === undefined ? -Infinity : b.till === -1 ? Infinity : b.till
        const count = pairs(got[j] ?? []).filter(([, score]) => Number(score) >= at - periodMs && Number(score) <= at && Number(score) > since).length
        if (count < nb.minAddresses) continue
        const length = blockLength(config, b?.n ?? 0)
        if (length !== 0 && at + length * 60_000 <= redisNow) continue
        const made = await claim(g.instance, g.network, at, rule, false, null, undefined, keys.network(g.instance, g.network))
        if (made !== null && made.node === cluster.node && made.at === at) {
          out.blocked.push({...blockInfo(entryFor(data, g.instance, g.network, fromRedis(at))), blockedAt: fromRedis(made.at), blockedUntil: made.till === -1 ? null : fromRedis(made.till), rule})
        }
      }
    }
  }

  // This node's blocks in force that Redis does not hold: lifted when Redis has a newer tombstone, pushed otherwise.
  for (const e of data.entries) {
    if (!isBlockActive(e, now) || !known.has(e.instance)) continue
    const id = `${e.instance} ${e.ip}`
    const b = blocks.get(id)
    if (b !== undefined && inForce(b)) continue
    const tomb = tombs.get(id)
    if (tomb !== undefined && tomb >= toRedis(e.blockedAt ?? 0)) continue // lifted below
    if (b !== undefined && b.at >= toRedis(e.blockedAt ?? 0) - SAME_MS) continue // the cluster's block of it ended, or was shortened: its record rules
    if (refused(e.ip) !== null) continue
    const minutes = e.blockedUntil === null ? 0 : Math.max(1 / 60, (e.blockedUntil - (e.blockedAt ?? now)) / 60_000)
    await claim(e.instance, e.ip, toRedis(e.blockedAt ?? now), e.rule ?? (e.comment !== null ? 'hand' : `failures:${config.maxAttempts}/${config.periodMinutes}`), false, e.comment, e.rule === 'hand' ? minutes : undefined)
  }

  // Make the database hold the cluster's blocks in force, and lift what was unblocked elsewhere.
  const byId = new Map(data.entries.map((e) => [`${e.instance} ${e.ip}`, e]))
  for (const [id, b] of blocks) {
    const [instance, key] = id.split(' ') as [string, string]
    if (!known.has(instance)) continue
    if (!inForce(b)) continue
    const why = refused(key)
    if (why !== null) {
      skipped.push(`${key} (never blocked here: ${why})`)
      continue
    }
    const at = fromRedis(b.at)
    const until = b.till === -1 ? null : fromRedis(b.till)
    let e = byId.get(id)
    if (e === undefined) {
      e = newEntry(key, instance, at)
      data.entries.push(e)
      byId.set(id, e)
    }
    // The same block as this node holds: the clock difference measured at each run moves by a few ms (more
    // when this host's clock is stepped); a block within a minute of it is left as it is.
    const near = (x: number | null, y: number | null): boolean => (x === null ? y === null : y !== null && Math.abs(x - y) <= SAME_MS)
    if (isBlockActive(e, now) && near(e.blockedAt, at) && near(e.blockedUntil, until) && e.rule === b.rule) continue
    const fresh = !isBlockActive(e, now)
    e.blockedAt = at
    e.blockedUntil = until
    e.blocks = Math.max(e.blocks, b.n)
    e.rule = b.rule
    e.failures = []
    delete e.tried
    if (b.c !== undefined) e.comment = b.c
    if (fresh && b.node !== cluster.node) out.adopted.push({...blockInfo(e), node: b.node})
  }
  for (const [id, t] of tombs) {
    const e = byId.get(id)
    if (e === undefined || !isBlockActive(e, now) || toRedis(e.blockedAt ?? 0) > t) continue
    const b = blocks.get(id)
    if (b !== undefined && inForce(b)) continue
    out.lifted.push(blockInfo(e))
    data.entries = data.entries.filter((x) => x !== e)
    byId.delete(id)
  }
  if (skipped.length > 0) out.warnings.push(`cluster: ${skipped.length} record(s) in Redis not taken: ${skipped.slice(0, 3).join('; ')}${skipped.length > 3 ? ' …' : ''}`)
  rec.outbox = []
  rec.successes = []
  rec.offset = Math.round(offset)
  rec.reached = now
}

/** The entry of `key` on `instance` (made when missing, at `at`). */
function entryFor(data: StoreData, instance: string, key: string, at: number): Entry {
  let e = data.entries.find((x) => x.instance === instance && x.ip === key)
  if (e === undefined) {
    e = newEntry(key, instance, at)
    data.entries.push(e)
  }
  return e
}

/**
 * The admins' whitelist across the cluster: entries added on any node are added here; entries removed on
 * another node (a removal newer than the entry) go here too, when they came from the cluster; this node's
 * own entries the cluster lacks (added while Redis was away, or before the cluster) are pushed.
 */
async function syncWhitelist(client: ClusterClient, data: StoreData, rec: ClusterRecord, wl: [string, string][], removed: Map<string, number>, clock: {toRedis: (t: number) => number; fromRedis: (t: number) => number; now: number}, out: ClusterOutcome): Promise<void> {
  const keys = client.keys
  const {toRedis, fromRedis, now} = clock
  const fromCluster = new Set(rec.whitelisted ?? [])
  const inCluster = new Set<string>()
  for (const [cidr, text] of wl) {
    if (whitelistCidrProblem(cidr) !== null || parseCidr(cidr)?.text !== cidr) continue
    inCluster.add(cidr)
    let comment: string | null = null
    let added = 0
    try {
      const r = JSON.parse(text) as {comment?: unknown; added?: unknown}
      if (typeof r.comment === 'string') comment = escapeText(r.comment, {max: 200})
      if (typeof r.added === 'number' && Number.isInteger(r.added) && r.added >= 0 && r.added <= MAX_TIME) added = r.added
    } catch {
      // A record that is no JSON still whitelists its network: refusing to block is the safe side.
    }
    if (!data.whitelist.some((w) => w.cidr === cidr)) data.whitelist.push({cidr, comment, added: Math.max(0, fromRedis(added))})
    fromCluster.add(cidr)
    // Entries it covers are lifted, as `rcguard whitelist` lifts them.
    const net = parseCidr(cidr)
    if (net !== null) {
      const lifted = data.entries.filter((e) => {
        const c = parseCidr(e.ip)
        return c !== null && cidrsOverlap(c, net)
      })
      for (const e of lifted) if (e.blockedAt !== null) out.lifted.push(blockInfo(e))
      if (lifted.length > 0) data.entries = data.entries.filter((e) => !lifted.includes(e))
    }
  }
  const keep = []
  for (const w of data.whitelist) {
    const gone = removed.get(w.cidr)
    if (!inCluster.has(w.cidr) && gone !== undefined && gone >= toRedis(w.added)) {
      fromCluster.delete(w.cidr)
      continue
    }
    keep.push(w)
    if (!inCluster.has(w.cidr)) {
      await client.call((r) => r.rcWhitelist(2, keys.whitelist(), keys.whitelistRemoved(), toRedis(now), '1', w.cidr, JSON.stringify({comment: w.comment, added: toRedis(w.added)})))
      fromCluster.add(w.cidr)
    }
  }
  data.whitelist = keep
  rec.whitelisted = [...fromCluster].filter((c) => data.whitelist.some((w) => w.cidr === c))
}
