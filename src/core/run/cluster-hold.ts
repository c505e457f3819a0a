/**
 * Making a node's database hold the cluster as Redis holds it (a checked
 * ClusterView, cluster/records.ts): what a flush --cluster ended goes, the
 * admins' whitelist is taken in, the blocks in force are held (the firewall
 * then holds them, desired.ts), and what was unblocked on another node is
 * lifted. Used by every run (cluster-sync.ts) and, on a copy, by `list`.
 * The never-block rules of this node apply to everything taken.
 */
import {isBlockActive, neverBlockOverlap, neverBlockReason, newEntry} from '../decisions/decide.js'
import type {Config} from '../config/config.js'
import {ClusterClient, ClusterUnreachable} from '../cluster/client.js'
import type {ClusterView} from '../cluster/records.js'
import {parseView} from '../cluster/records.js'
import {cidrsOverlap, parseCidr, type NetworkList} from '../net/ip.js'
import type {Entry, StoreData, WhitelistEntry} from '../store/schema.js'
import {blockInfo, whitelistOf, type BlockInfo} from './context.js'

/**
 * Block times that differ by at most this are the same block: the clock difference is measured at each run
 * and moves by milliseconds between runs. A new block is taken for an ended one only when the ended one
 * lasted under this (a blockMinutes of a fraction of a second).
 */
export const SAME_MS = 2_000

/** This node's clock and Redis's: Redis's time is this node's plus offset. */
export interface ClusterClock {
  offset: number
  toRedis: (t: number) => number
  fromRedis: (t: number) => number
}

export function clusterClock(offset: number): ClusterClock {
  return {offset, toRedis: (t) => t + offset, fromRedis: (t) => t - offset}
}

/** What holding the view changed. */
export interface Held {
  /** Blocks of other nodes now held here, each with the node that made it. */
  adopted: (BlockInfo & {node: string})[]
  /** Blocks lifted here: unblocked or whitelisted on another node, or ended by flush --cluster. */
  lifted: BlockInfo[]
  /** This node's whitelist entries the cluster lacks: to be pushed. */
  unshared: WhitelistEntry[]
  skipped: string[]
  /** The database was changed (so the run writes it). */
  changed: boolean
}

export function newHeld(): Held {
  return {adopted: [], lifted: [], unshared: [], skipped: [], changed: false}
}

/** Why the key must never be blocked on this node, or null. */
export function refusal(key: string, never: NetworkList): string | null {
  return key.includes('/') ? neverBlockOverlap(key, never) : neverBlockReason(key, never)
}

/**
 * First: what a flush --cluster ended goes (blocks from before it; with --all, whitelist entries from
 * before), then the admins' whitelist is taken in both ways (added on any node; removed on another node
 * after it was added here). Entries a whitelisted network overlaps are lifted, as `rcguard whitelist` does.
 */
export function holdWhitelist(data: StoreData, view: ClusterView, clock: ClusterClock, now: number, held: Held): void {
  const {toRedis, fromRedis} = clock
  const flushed = view.flushed
  if (flushed !== null) {
    const before = (t: number | null): boolean => t !== null && toRedis(t) <= flushed.at
    const gone = data.entries.filter((e) => e.blockedAt !== null && before(e.blockedAt))
    for (const e of gone) if (isBlockActive(e, now)) held.lifted.push(blockInfo(e))
    if (gone.length > 0) {
      data.entries = data.entries.filter((e) => !gone.includes(e))
      held.changed = true
    }
    if (flushed.all && data.whitelist.some((w) => before(w.added))) {
      data.whitelist = data.whitelist.filter((w) => !before(w.added))
      held.changed = true
    }
  }
  for (const [cidr, w] of view.whitelist) {
    if (!data.whitelist.some((x) => x.cidr === cidr)) {
      data.whitelist.push({cidr, comment: w.comment, added: Math.max(0, fromRedis(w.added))})
      held.changed = true
    }
    const net = parseCidr(cidr)
    if (net === null) continue
    const lifted = data.entries.filter((e) => {
      const c = parseCidr(e.ip)
      return c !== null && cidrsOverlap(c, net)
    })
    for (const e of lifted) if (isBlockActive(e, now)) held.lifted.push(blockInfo(e))
    if (lifted.length > 0) {
      data.entries = data.entries.filter((e) => !lifted.includes(e))
      held.changed = true
    }
  }
  const keep: WhitelistEntry[] = []
  for (const w of data.whitelist) {
    const gone = view.whitelistRemoved.get(w.cidr)
    if (!view.whitelist.has(w.cidr) && gone !== undefined && gone >= toRedis(w.added)) continue
    keep.push(w)
    if (!view.whitelist.has(w.cidr)) held.unshared.push(w)
  }
  if (keep.length !== data.whitelist.length) held.changed = true
  data.whitelist = keep
}

/**
 * Then: every block in force in the view that this node may hold is held (made, or brought to the
 * cluster's times, rule and count), and every block this node holds that a newer tombstone lifted goes.
 */
export function holdBlocks(config: Config, data: StoreData, view: ClusterView, clock: ClusterClock, now: number, held: Held): void {
  const node = config.cluster?.node ?? ''
  const known = new Set(config.instances.map((i) => i.name))
  const never = whitelistOf(config, data)
  const {toRedis, fromRedis} = clock
  const byId = new Map(data.entries.map((e) => [`${e.instance} ${e.ip}`, e]))
  const near = (x: number | null, y: number | null): boolean => (x === null ? y === null : y !== null && Math.abs(x - y) <= SAME_MS)
  for (const [id, b] of view.blocks) {
    const [instance, key] = id.split(' ') as [string, string]
    if (!known.has(instance) || !(b.till === -1 || b.till > view.now)) continue
    const why = refusal(key, never)
    if (why !== null) {
      held.skipped.push(`${key} (never blocked here: ${why})`)
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
    // The same block as this node holds, within the drift of the measured clock difference: left as it is.
    if (isBlockActive(e, now) && near(e.blockedAt, at) && near(e.blockedUntil, until) && e.rule === b.rule) continue
    const fresh = !isBlockActive(e, now)
    held.changed = true
    e.blockedAt = at
    e.blockedUntil = until
    e.blocks = Math.max(e.blocks, b.n)
    e.rule = b.rule
    e.failures = []
    delete e.tried
    if (b.c !== undefined) e.comment = b.c
    if (fresh && b.node !== node) held.adopted.push({...blockInfo(e), node: b.node})
  }
  // An unblock on any node forgets the address on every node, as unblock forgets it on one: its block, and the
  // failures this node still keeps of it from before (they would count again towards its next block).
  for (const [id, t] of view.tombs) {
    const e = byId.get(id)
    if (e === undefined) continue
    const b = view.blocks.get(id)
    if (b !== undefined && (b.till === -1 || b.till > view.now)) continue
    if (isBlockActive(e, now)) {
      if (toRedis(e.blockedAt ?? 0) > t) continue
      held.lifted.push(blockInfo(e))
    } else if (toRedis(e.lastSeen) > t) {
      // Failures since the unblock stay: only those from before go.
      const keep = e.failures.map((f, i) => (toRedis(f) > t ? i : -1)).filter((i) => i !== -1)
      if (keep.length === e.failures.length) continue
      if (e.tried !== undefined && e.tried.length === e.failures.length * 4) e.tried = keep.map((i) => (e.tried as string).slice(i * 4, i * 4 + 4)).join('')
      else delete e.tried
      e.failures = keep.map((i) => e.failures[i] as number)
      if (e.tried === '') delete e.tried
      held.changed = true
      continue
    }
    data.entries = data.entries.filter((x) => x !== e)
    byId.delete(id)
    held.changed = true
  }
}

/** The replies of a read of the cluster without a change (list): as READ returns them. */
async function readOnly(client: ClusterClient, instances: readonly string[]): Promise<string[][]> {
  const keys = client.keys
  const out: string[][] = []
  for (const i of instances) {
    out.push(await client.call((r) => r.hgetall(keys.blocks(i)).then((h) => Object.entries(h).flat())))
    out.push(await client.call((r) => r.hgetall(keys.tombstones(i)).then((h) => Object.entries(h).flat())))
  }
  out.push(await client.call((r) => r.hgetall(keys.whitelist()).then((h) => Object.entries(h).flat())))
  out.push(await client.call((r) => r.hgetall(keys.whitelistRemoved()).then((h) => Object.entries(h).flat())))
  out.push([(await client.call((r) => r.get(keys.flushed()))) ?? ''])
  return out
}

/**
 * `data` as it holds the cluster now (for `list`, which writes nothing): the cluster's blocks and whitelist
 * taken into it, read without changing Redis. Redis unreachable: `data` as this node's last run left it,
 * and the warning that says so.
 */
export async function withClusterView(config: Config, data: StoreData, now: number): Promise<{warning?: string}> {
  const cluster = config.cluster
  if (cluster === undefined) return {}
  let client: ClusterClient | null = null
  try {
    client = await ClusterClient.connect(cluster)
    const offset = await client.clockOffset(now)
    const instances = config.instances.map((i) => i.name)
    const view = parseView(instances, await readOnly(client, instances), now + offset)
    const clock = clusterClock(offset)
    const held = newHeld()
    holdWhitelist(data, view, clock, now, held)
    holdBlocks(config, data, view, clock, now, held)
    return {}
  } catch (err) {
    if (!(err instanceof ClusterUnreachable)) throw err
    return {warning: `cluster: ${err.message}: this is what this node held at its last run`}
  } finally {
    await client?.close()
  }
}

/** The entry of `key` on `instance` (made when missing, at `at`). */
export function entryFor(data: StoreData, instance: string, key: string, at: number): Entry {
  let e = data.entries.find((x) => x.instance === instance && x.ip === key)
  if (e === undefined) {
    e = newEntry(key, instance, at)
    data.entries.push(e)
  }
  return e
}
