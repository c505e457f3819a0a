/**
 * What rcguard reads back from Redis, checked before anything else sees it:
 * block records, tombstones, the whitelist, the flush marker (their shapes
 * are scripts.ts's). A record that is not one rcguard writes is skipped and
 * named (one warning per run), never trusted.
 */
import {MAX_TIME, entryAddressProblem, whitelistCidrProblem} from '../store/values.js'
import {parseCidr} from '../net/ip.js'
import {escapeText} from '../text/escape.js'

export interface BlockRecord {
  /** When the block started and ends (-1: until deleted), on Redis's clock. */
  at: number
  till: number
  rule: string
  /** The node that made it. */
  node: string
  /** How many blocks the key has had, this one included (escalation). */
  n: number
  /** A block by hand's comment. */
  c?: string
}

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_TIME
const isStamp = (t: string): boolean => /^[0-9]{1,16}$/.test(t) && Number(t) <= MAX_TIME

/** A block record from Redis, or why it is not one rcguard would write. */
export function blockRecord(text: string): BlockRecord | string {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return 'not JSON'
  }
  if (typeof raw !== 'object' || raw === null) return 'not a record'
  const r = raw as Record<string, unknown>
  if (!isTime(r.at) || !(r.till === -1 || isTime(r.till)) || typeof r.rule !== 'string' || !/^(?:hand|[a-z]+:[0-9]+\/[0-9.]+)$/.test(r.rule)) return 'not a block record'
  if (typeof r.node !== 'string' || r.node.length > 64 || typeof r.n !== 'number' || !Number.isInteger(r.n) || r.n < 1 || r.n > 1e6) return 'not a block record'
  const c = typeof r.c === 'string' ? escapeText(r.c, {max: 200}) : undefined
  return {at: r.at, till: r.till as number, rule: r.rule, node: escapeText(r.node, {max: 64}), n: r.n, ...(c === undefined ? {} : {c})}
}

/** The flush marker (P flushed), or null: none, or not one rcguard writes. */
export function flushMarker(text: string): {at: number; all: boolean} | null {
  if (text === '') return null
  try {
    const r = JSON.parse(text) as {at?: unknown; all?: unknown}
    if (isTime(r.at)) return {at: r.at, all: r.all === true}
  } catch {
    // not ours: ignored
  }
  return null
}

/** A flat HGETALL/ZRANGE WITHSCORES reply as pairs. */
export function pairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = []
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string])
  return out
}

/** The cluster as Redis holds it, checked: keyed `<instance> <key>`. */
export interface ClusterView {
  /** Redis's time of the read. */
  now: number
  blocks: Map<string, BlockRecord>
  /** When each key was unblocked. */
  tombs: Map<string, number>
  /** The admins' whitelist: canonical CIDR → its comment and when it was added (Redis clock). */
  whitelist: Map<string, {comment: string | null; added: number}>
  /** Whitelist removals: CIDR → when. */
  whitelistRemoved: Map<string, number>
  flushed: {at: number; all: boolean} | null
  /** Records not taken, named for the warning. */
  skipped: string[]
}

/**
 * The view from the raw replies: per instance its blocks hash and tombstones hash, then the whitelist, its
 * removals and the flush marker's text (READ's order).
 */
export function parseView(instances: readonly string[], replies: readonly (readonly string[])[], now: number): ClusterView {
  const view: ClusterView = {now, blocks: new Map(), tombs: new Map(), whitelist: new Map(), whitelistRemoved: new Map(), flushed: null, skipped: []}
  instances.forEach((instance, i) => {
    for (const [key, text] of pairs(replies[2 * i] ?? [])) {
      const problem = entryAddressProblem(key)
      const r = problem === null ? blockRecord(text) : problem
      if (typeof r === 'string') view.skipped.push(`${escapeText(key, {max: 60})} (${r})`)
      else view.blocks.set(`${instance} ${key}`, r)
    }
    for (const [key, t] of pairs(replies[2 * i + 1] ?? [])) if (entryAddressProblem(key) === null && isStamp(t)) view.tombs.set(`${instance} ${key}`, Number(t))
  })
  const k = 2 * instances.length
  for (const [cidr, text] of pairs(replies[k] ?? [])) {
    if (whitelistCidrProblem(cidr) !== null || parseCidr(cidr)?.text !== cidr) {
      view.skipped.push(`whitelist ${escapeText(cidr, {max: 60})} (not a network rcguard writes)`)
      continue
    }
    let comment: string | null = null
    let added = 0
    try {
      const r = JSON.parse(text) as {comment?: unknown; added?: unknown}
      if (typeof r.comment === 'string') comment = escapeText(r.comment, {max: 200})
      if (isTime(r.added)) added = r.added
    } catch {
      // A record that is no JSON still whitelists its network: refusing to block is the safe side.
    }
    view.whitelist.set(cidr, {comment, added})
  }
  for (const [cidr, t] of pairs(replies[k + 1] ?? [])) if (isStamp(t)) view.whitelistRemoved.set(cidr, Number(t))
  view.flushed = flushMarker(replies[k + 2]?.[0] ?? '')
  return view
}
