/**
 * Networks, two ways.
 *
 * 1. firewall.ipv6Prefix (mergeIntoNetworks): entries recorded under another
 * key than the one the configuration counts by now are merged into the entry
 * of that key: per-address IPv6 entries from before failures were counted per
 * network (or from before `firewall.ipv6Prefix` was lowered), and networks
 * narrower than a lowered prefix. So one network has one entry, with one
 * window, one block and one block count, and `list`, `unblock` and the
 * firewall all speak of it.
 *
 * A wider network is never split: an entry for a /64 stays a /64 when the
 * prefix is raised to 128, until it expires or is deleted, and the firewall
 * keeps blocking exactly that /64 meanwhile.
 *
 * 2. networkBlock (NetworkWatch, below): a swarm of many addresses of one
 * network, each failing too rarely to be blocked on its own, is found and
 * named, so that the caller blocks the network as one entry.
 */
import type {Entry, NetworkRecord, StoreData} from '../store/schema.js'
import {MAX_NETWORKS, MAX_USERS, MAX_WINDOW_ADDRESSES} from '../store/bounds.js'
import {MIN_IPV4_PREFIX, MIN_IPV6_PREFIX} from '../store/values.js'
import {ipv4Key, isPlainIpv4, networkOf, overlapsLoopback, parseCidr, widenIpv6, type NetworkList} from '../net/ip.js'


/**
 * Merges, per instance, every entry whose `keyOf(ip)` differs from its ip
 * into the entry of that key (made from them when there is none), in place.
 * Returns how many entries were merged away.
 */
export function mergeIntoNetworks(data: StoreData, keyOf: (ip: string) => string): number {
  // Nearly always nothing moves: find that out without building anything per entry.
  const moved = new Map<Entry, string>()
  for (const e of data.entries) {
    const key = keyOf(e.ip)
    if (key !== e.ip) moved.set(e, key)
  }
  if (moved.size === 0) return 0
  const id = (instance: string, key: string): string => `${instance}\u0000${key}`
  const groups = new Map<string, {key: string; members: Entry[]}>()
  for (const [e, key] of moved) {
    const g = groups.get(id(e.instance, key))
    if (g === undefined) groups.set(id(e.instance, key), {key, members: [e]})
    else g.members.push(e)
  }
  // An entry already under its key (a network entry from an earlier run) is merged into, first in its group.
  for (const e of data.entries) {
    if (!moved.has(e)) groups.get(id(e.instance, e.ip))?.members.unshift(e)
  }
  let merged = 0
  const replace = new Map<Entry, Entry | null>()
  for (const g of groups.values()) {
    const [first] = g.members
    if (first === undefined) continue
    replace.set(first, combine(g.key, g.members))
    for (const m of g.members.slice(1)) replace.set(m, null)
    merged += g.members.length - 1
  }
  const out: Entry[] = []
  for (const e of data.entries) {
    const r = replace.get(e)
    if (r === undefined) out.push(e)
    else if (r !== null) out.push(r)
  }
  data.entries = out
  return merged
}

/** One entry for `ip` from several of one instance: their attempts, history and the union of their blocks. */
function combine(ip: string, members: Entry[]): Entry {
  const bySeen = [...members].sort((a, b) => a.lastSeen - b.lastSeen)
  const last = bySeen[bySeen.length - 1] ?? members[0]
  if (last === undefined) throw new Error('combine: no entries')
  const blocked = members.filter((m) => m.blockedAt !== null)
  const ends = members.map((m) => m.lastBlockEnd).filter((t): t is number => t !== null)
  // The most recent distinct user names, most recent last.
  const all = bySeen.flatMap((m) => m.users)
  const users = new Set<string>()
  for (let i = all.length - 1; i >= 0 && users.size < MAX_USERS; i--) users.add(all[i] ?? '')
  const comments = [...new Set(members.map((m) => m.comment).filter((c): c is string => c !== null))]
  return {
    ip,
    instance: last.instance,
    // Failures are cleared while blocked, as when a block starts.
    failures: blocked.length > 0 ? [] : members.flatMap((m) => m.failures).sort((a, b) => a - b),
    attempts: members.reduce((n, m) => n + m.attempts, 0),
    firstSeen: members.reduce((t, m) => Math.min(t, m.firstSeen), Infinity),
    lastSeen: last.lastSeen,
    lastUser: last.lastUser,
    // The network was blocked while any of them was: from the earliest start to the latest end (null: until deleted).
    blockedAt: blocked.length > 0 ? blocked.reduce((t, m) => Math.min(t, m.blockedAt ?? t), Infinity) : null,
    blockedUntil: blocked.length === 0 || blocked.some((m) => m.blockedUntil === null) ? null : blocked.reduce((t, m) => Math.max(t, m.blockedUntil ?? t), 0),
    // Every block of its addresses was a block of the network: the next one escalates from all of them.
    blocks: members.reduce((n, m) => n + m.blocks, 0),
    lastBlockEnd: ends.length > 0 ? ends.reduce((a, b) => Math.max(a, b)) : null,
    users: [...users].reverse(),
    comment: comments.length > 0 ? comments.join('; ') : null,
  }
}

/*
 * NetworkWatch (networkBlock): when `minAddresses` distinct addresses of one
 * network (its /ipv4Prefix or /ipv6Prefix) have failed within
 * `periodMinutes`, the network is a hit, once per window: the caller blocks it
 * and calls clear(), so a fresh swarm is needed to hit it again.
 *
 * Only failures the decider counted reach it (a new attempt of an address
 * that may be blocked), so lines that count for nobody make no swarm; and a
 * network that overlaps anything never blocked (`never`: the whitelist,
 * trusted proxies, this host, loopback) never hits, however many of its other
 * addresses fail. `never` is asked once per network per run (its verdicts
 * are kept, up to MAX_VERDICTS networks: past that a flood of networks makes
 * it ask again, never answer otherwise); each refusal is reported once, by
 * refused().
 *
 * What counts as one address: the text the decider counts by, an IPv4
 * address, an IPv6 address or, with firewall.ipv6Prefix, the IPv6 network of
 * that prefix (its entry). Such a network counts for the network of
 * ipv6Prefix that holds it when ipv6Prefix is no longer than its own prefix
 * (2001:db8:1:2::/64 counts for 2001:db8:1::/48 with ipv6Prefix 48, and is
 * its own network with ipv6Prefix 64, where it can never be minAddresses
 * addresses); a key wider than ipv6Prefix (a /48 entry with ipv6Prefix 64)
 * is ignored: it is no address of one network of that prefix, and counting it
 * would block a network narrower than what failed. IPv4 network text (an
 * entry of a network already blocked) is treated the same way against
 * ipv4Prefix. Nothing here widens past the prefix given.
 *
 * An episode begins with the first failure of a network that has none in
 * the last periodMinutes, and ends when periodMinutes pass without one; the
 * hit gives its first failure. The window is exact over log time for lines in
 * time order: each address's newest failure is kept, and an address counts
 * while that is within periodMinutes of the network's newest failure. A line
 * out of order counts when its time is within the period of the newest
 * failure (it cannot move the window back: a line older than that by more
 * than the period counts for nothing), so with lines out of order a hit is
 * never given without minAddresses addresses failing within one period, but
 * may come later than the first such window.
 *
 * Bounded whatever an attacker sends: at most MAX_NETWORKS networks (the
 * least recently failed dropped first) and per network at most
 * MAX_WINDOW_ADDRESSES addresses (the oldest dropped first); the addresses are
 * the parser's canonical text, so nothing else of the client reaches it.
 */

export interface NetworkBlockSettings {
  ipv4Prefix: number
  ipv6Prefix: number
  minAddresses: number
  periodMinutes: number
}

export interface NetworkHit {
  instance: string
  /** Canonical CIDR text: 198.51.100.0/24, 2001:db8:1::/48. */
  network: string
  /** Distinct addresses of the network in the window that made the hit (at least minAddresses). */
  addresses: number
  /** The first failure of the episode. */
  first: number
  /** The failure that completed the window. */
  at: number
}

export interface NetworkRefusal {
  instance: string
  network: string
  /** Why `never` refused it. */
  why: string
}

/** Verdicts of `never` kept per run (networks): past this many they are forgotten and asked again. */
export const MAX_VERDICTS = 4 * MAX_NETWORKS

interface Tracked {
  instance: string
  network: string
  first: number
  /** The network's newest failure. */
  last: number
  /** Each address of the window and its newest failure. */
  recent: Map<string, number>
  /** Whether recent's order is its times' order (true unless a line came out of order): then the stale ones are at its front. */
  sorted: boolean
}

export class NetworkWatch {
  private readonly periodMs: number
  private readonly v4Mask: number
  private readonly tracked = new Map<string, Tracked>()
  private readonly verdicts = new Map<string, string | null>()
  private readonly refusals = new Map<string, NetworkRefusal>()

  constructor(
    records: readonly NetworkRecord[],
    private readonly settings: NetworkBlockSettings,
    private readonly never: (network: string) => string | null,
  ) {
    const {ipv4Prefix, ipv6Prefix, minAddresses, periodMinutes} = settings
    if (!Number.isInteger(ipv4Prefix) || ipv4Prefix < MIN_IPV4_PREFIX || ipv4Prefix > 32) throw new RangeError(`networkBlock.ipv4Prefix ${ipv4Prefix}: not ${MIN_IPV4_PREFIX} to 32`)
    if (!Number.isInteger(ipv6Prefix) || ipv6Prefix < MIN_IPV6_PREFIX || ipv6Prefix > 128) throw new RangeError(`networkBlock.ipv6Prefix ${ipv6Prefix}: not ${MIN_IPV6_PREFIX} to 128`)
    if (!Number.isInteger(minAddresses) || minAddresses < 1) throw new RangeError(`networkBlock.minAddresses ${minAddresses}: not a positive integer`)
    if (!(periodMinutes > 0)) throw new RangeError(`networkBlock.periodMinutes ${periodMinutes}: not positive`)
    this.periodMs = periodMinutes * 60_000
    this.v4Mask = ipv4Prefix === 0 ? 0 : (0xffffffff << (32 - ipv4Prefix)) >>> 0
    // Each saved address is counted again for its network under these settings: a changed prefix regroups them.
    for (const r of records) {
      for (const {ip, time} of r.recent) {
        const network = this.networkFor(ip)
        if (network === null) continue
        const t = this.track(r.instance, network, time)
        if (r.first < t.first) t.first = r.first
        this.place(t, ip, time)
      }
    }
  }

  /** One counted failure of `ip` (an address that may be blocked) at log time `time`; a hit when its network's window completes, else null. */
  add(instance: string, key: string, time: number): NetworkHit | null {
    const network = this.networkFor(key)
    if (network === null) return null
    // One IPv6 host has a whole /64 to take addresses from: in a network wider than that, the addresses counted are its /64s.
    const ip = this.settings.ipv6Prefix < 64 ? widenIpv6(key, 64) : key
    const t = this.track(instance, network, time)
    this.place(t, ip, time)
    if (t.recent.size < this.settings.minAddresses) return null
    const why = this.verdict(network)
    if (why !== null) {
      // A swarm the network may not be blocked for: told once (refused()), and a fresh one is needed to be told again.
      const key = keyOf(instance, network)
      this.tracked.delete(key)
      if (!this.refusals.has(key) && this.refusals.size < MAX_NETWORKS) this.refusals.set(key, {instance, network, why})
      return null
    }
    return {instance, network, addresses: t.recent.size, first: t.first, at: time}
  }

  /**
   * The network a counted failure of `key` counts for, and what it counts there as (the address, or in a
   * network wider than /64 an IPv6 address's /64), as add() counts it; null: none (cluster-sync.ts shares
   * the networks' windows this way).
   */
  countedAs(key: string): {network: string; member: string} | null {
    const network = this.networkFor(key)
    if (network === null) return null
    return {network, member: this.settings.ipv6Prefix < 64 ? widenIpv6(key, 64) : key}
  }

  /** Forget the network's window after it was blocked (so a fresh swarm is needed after the block ends). */
  clear(instance: string, network: string): void {
    this.tracked.delete(keyOf(instance, network))
  }

  /** Networks refused by `never` during this run, each once: for a warning line. */
  refused(): NetworkRefusal[] {
    return [...this.refusals.values()]
  }

  /** What to keep in the database: open windows still within the period of `now`, bounded; the least recently failed first. */
  save(now: number): NetworkRecord[] {
    const out: NetworkRecord[] = []
    for (const t of this.tracked.values()) {
      if (t.last + this.periodMs < now || t.recent.size === 0) continue
      const recent = [...t.recent].map(([ip, time]) => ({ip, time}))
      if (!t.sorted) recent.sort((a, b) => a.time - b.time)
      out.push({instance: t.instance, network: t.network, first: t.first, recent})
    }
    return out
  }

  /** The network `ip` counts for (canonical CIDR text), or null when it counts for none (see the comment above). */
  private networkFor(ip: string): string | null {
    if (isPlainIpv4(ip)) {
      // The common case, without parsing: the address's number masked.
      const n = ((ipv4Key(ip) as number) & this.v4Mask) >>> 0
      return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${this.settings.ipv4Prefix}`
    }
    const slash = ip.indexOf('/')
    if (slash !== -1) {
      const c = parseCidr(ip)
      if (c === null) return null
      const prefix = c.family === 4 ? this.settings.ipv4Prefix : this.settings.ipv6Prefix
      return prefix > c.prefix ? null : networkOf(c.network.toString(), prefix).text
    }
    const c = parseCidr(`${ip}/${this.settings.ipv6Prefix}`)
    return c === null || c.family !== 6 ? null : c.text
  }

  /** Why `network` must never be blocked, or null: `never`'s answer, asked once per network. */
  private verdict(network: string): string | null {
    const known = this.verdicts.get(network)
    if (known !== undefined) return known
    const why = this.never(network)
    if (this.verdicts.size >= MAX_VERDICTS) this.verdicts.clear()
    this.verdicts.set(network, why)
    return why
  }

  /** The network's record, most recently failed last, a new episode when the last one ended a period before `time`. */
  private track(instance: string, network: string, time: number): Tracked {
    const key = keyOf(instance, network)
    let t = this.tracked.get(key)
    if (t !== undefined) {
      // The Map's order is the eviction order: most recently failed last.
      this.tracked.delete(key)
      if (time > t.last + this.periodMs) t = undefined
    }
    if (t === undefined) t = {instance, network, first: time, last: time, recent: new Map(), sorted: true}
    this.tracked.set(key, t)
    for (const k of this.tracked.keys()) {
      if (this.tracked.size <= MAX_NETWORKS) break
      this.tracked.delete(k)
    }
    return t
  }

  /** Records the failure of `ip` at `time` in the window of `t`, then drops what left the window and holds it to its bound. */
  private place(t: Tracked, ip: string, time: number): void {
    const recent = t.recent
    const had = recent.get(ip)
    if (had === undefined || had < time) {
      if (had !== undefined) recent.delete(ip)
      // Appended: still in time order unless an address of the window failed later (no window time is past t.last).
      if (time < t.last && recent.size > 0) t.sorted = false
      recent.set(ip, time)
    }
    if (time < t.first) t.first = time
    if (time > t.last) t.last = time
    const from = t.last - this.periodMs
    if (t.sorted) {
      for (const [a, at] of recent) {
        if (at >= from) break
        recent.delete(a)
      }
    } else {
      for (const [a, at] of recent) if (at < from) recent.delete(a)
    }
    while (recent.size > MAX_WINDOW_ADDRESSES) recent.delete(t.sorted ? (recent.keys().next().value as string) : oldest(recent))
    if (recent.size <= 1) t.sorted = true
  }
}

/** The address of `recent` with the oldest failure. */
function oldest(recent: Map<string, number>): string {
  let which = ''
  let min = Infinity
  for (const [a, at] of recent) {
    if (at < min) {
      min = at
      which = a
    }
  }
  return which
}

function keyOf(instance: string, network: string): string {
  return `${instance}\u0000${network}`
}

/**
 * A `never` for NetworkWatch from the list of what is never blocked
 * (run/context.ts whitelistOf: whitelist, trusted proxies, this host): why a
 * network overlapping any of it, or loopback, must never be blocked, or null.
 */
export function neverBlockedIn(list: NetworkList): (network: string) => string | null {
  return (network) => {
    if (overlapsLoopback(network)) return 'it holds loopback addresses'
    const c = list.overlapping(network)
    return c === undefined ? null : `it holds what is never blocked: ${c.label ?? c.text}`
  }
}
