/**
 * Entries recorded under another key than the one the configuration counts
 * by now are merged into the entry of that key: per-address IPv6 entries from
 * before failures were counted per network (or from before
 * `firewall.ipv6Prefix` was lowered), and networks narrower than a lowered
 * prefix. So one network has one entry, with one window, one block and one
 * block count, and `list`, `unblock` and the firewall all speak of it.
 *
 * A wider network is never split: an entry for a /64 stays a /64 when the
 * prefix is raised to 128, until it expires or is deleted, and the firewall
 * keeps blocking exactly that /64 meanwhile.
 */
import type {Entry, StoreData} from '../store/schema.js'
import {MAX_USERS} from '../store/bounds.js'


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
