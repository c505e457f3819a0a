/**
 * `list`'s rows from the database: every entry with its state, blocked first,
 * then watching, each by last seen (newest first), then by address; then the
 * admin's whitelist as it is kept. Linear in the entries but for the sort of
 * the rows that can be shown (listView); times are written without a Date
 * per value.
 */
import {isBlockActive, neverBlockReason} from '../decisions/decide.js'
import {cidrsOverlap, ipSortKey, parseCidr, type Cidr, type NetworkList} from '../net/ip.js'
import type {Entry, StoreData} from '../store/schema.js'
import {MAX_TIME} from '../store/values.js'

export type EntryState = 'blocked' | 'watching' | 'whitelisted'

const STATES: readonly EntryState[] = ['blocked', 'watching', 'whitelisted']

export interface ListRow {
  ip: string
  state: EntryState
  instance: string | null
  /** Failures in the current window (for watching), or counted since the entry began (blocked). */
  attempts: number
  firstSeen: string | null
  lastSeen: string | null
  blockedAt: string | null
  /** End of the block; null while blocked means until deleted. */
  blockedUntil: string | null
  lastUser: string | null
  blocks: number
  comment: string | null
  /** While blocked: the rule that blocked it (decisions/windows.ts ruleName; `hand`: rcguard block); null: not blocked, or not known. */
  rule: string | null
}

const DAY = 86_400_000
/** `YYYY-MM-DDT` per day number, for the days a list meets (times of a database cluster on few days). */
const days = new Map<number, string>()

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n)
}

/** new Date(t).toISOString() for a time of the database (0 to the end of year 9999), made faster. */
export function isoTime(t: number): string {
  const day = Math.floor(t / DAY)
  let date = days.get(day)
  if (date === undefined) {
    if (days.size >= 4096) days.clear()
    date = new Date(day * DAY).toISOString().slice(0, 11)
    days.set(day, date)
  }
  let rest = t - day * DAY
  const ms = rest % 1000
  rest = (rest - ms) / 1000
  const s = rest % 60
  rest = (rest - s) / 60
  const m = rest % 60
  const h = (rest - m) / 60
  return `${date}${two(h)}:${two(m)}:${two(s)}.${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`
}

function iso(t: number | null): string | null {
  return t === null ? null : isoTime(t)
}

/** How many rows of each state a list has, in all and per instance (whitelist rows have no instance). */
export interface ListCounts {
  states: Map<EntryState, number>
  instances: Map<string, Map<EntryState, number>>
}

export interface ListSelection {
  /** Only these states (absent: all). */
  state?: readonly EntryState[]
  instance?: string
  /** Only rows whose address or network overlaps this one. */
  overlapping?: Cidr
  /** At most this many rows (0: all). */
  limit: number
}

export interface ListView {
  counts: ListCounts
  /** Rows that matched the selection, shown or not. */
  total: number
  /** The first `limit` of them in the documented order, made again at each iteration (each row costs a few strings). */
  rows: Iterable<ListRow> & {length: number}
  /** A cluster node whose Redis could not be read: the view is the node's own, as its last run left it. */
  warnings?: string[]
}

function count(counts: ListCounts, state: EntryState, instance: string | null): void {
  counts.states.set(state, (counts.states.get(state) ?? 0) + 1)
  if (instance === null) return
  let m = counts.instances.get(instance)
  if (m === undefined) counts.instances.set(instance, (m = new Map()))
  m.set(state, (m.get(state) ?? 0) + 1)
}

function entryRow(e: Entry, blocked: boolean): ListRow {
  return {
    ip: e.ip,
    state: blocked ? 'blocked' : 'watching',
    instance: e.instance,
    attempts: blocked ? e.attempts : e.failures.length,
    firstSeen: iso(e.firstSeen),
    lastSeen: iso(e.lastSeen),
    blockedAt: blocked ? iso(e.blockedAt) : null,
    blockedUntil: blocked ? iso(e.blockedUntil) : null,
    lastUser: e.lastUser,
    blocks: e.blocks,
    comment: e.comment,
    rule: blocked ? (e.rule ?? null) : null,
  }
}

function whitelistRow(cidr: string, comment: string | null): ListRow {
  return {ip: cidr, state: 'whitelisted', instance: null, attempts: 0, firstSeen: null, lastSeen: null, blockedAt: null, blockedUntil: null, lastUser: null, blocks: 0, comment, rule: null}
}

/**
 * `list`'s view of the database: the counts of every row the selection
 * matches, and its first `limit` rows. Every entry is looked at once (its
 * state, the whitelist, the filter), but only the rows that can be among the
 * first `limit` are sorted, and only the rows shown are made: the ranks
 * (state, last seen) of the matching entries are sorted as numbers to find
 * the limit's rank, then the entries at or before it are sorted by rank and
 * address. So a 50-row list of 100,000 entries sorts about 50.
 */
export function listView(data: StoreData, whitelist: NetworkList, now: number, selection: ListSelection): ListView {
  const {state, instance, overlapping} = selection
  const counts: ListCounts = {states: new Map(STATES.map((s) => [s, 0])), instances: new Map()}
  const wanted = (s: EntryState): boolean => state === undefined || state.includes(s)
  const overlaps = (ip: string): boolean => {
    if (overlapping === undefined) return true
    const c = parseCidr(ip)
    return c !== null && cidrsOverlap(c, overlapping)
  }
  const entries = data.entries
  const matched: number[] = []
  const ranks: number[] = []
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry
    if (instance !== undefined && e.instance !== instance) continue
    const blocked = isBlockActive(e, now)
    if (!wanted(blocked ? 'blocked' : 'watching')) continue
    if (neverBlockReason(e.ip, whitelist) !== null || !overlaps(e.ip)) continue
    count(counts, blocked ? 'blocked' : 'watching', e.instance)
    matched.push(i)
    // One number for state and last seen (blocked first, then newer first: below 2^50, exact in a double).
    ranks.push((blocked ? 0 : 2 ** 49) + (MAX_TIME - e.lastSeen))
  }
  const listed = instance === undefined && wanted('whitelisted') ? data.whitelist.filter((w) => overlaps(w.cidr)) : []
  for (const _ of listed) count(counts, 'whitelisted', null)
  const total = matched.length + listed.length
  const limit = selection.limit === 0 ? total : selection.limit

  // The candidates: entries whose rank is at or before the limit-th smallest.
  let candidates = matched.map((_, k) => k)
  if (matched.length > limit) {
    const sorted = Float64Array.from(ranks).sort()
    const last = sorted[limit - 1] as number
    candidates = candidates.filter((k) => (ranks[k] as number) <= last)
  }
  const keys = new Map<number, string>()
  for (const k of candidates) keys.set(k, ipSortKey((entries[matched[k] as number] as Entry).ip))
  // Then by address; equal rows keep the database's order.
  candidates.sort((a, b) => {
    const d = (ranks[a] as number) - (ranks[b] as number)
    if (d !== 0) return d
    const ka = keys.get(a) as string
    const kb = keys.get(b) as string
    return ka < kb ? -1 : ka > kb ? 1 : a - b
  })
  const chosen = candidates.slice(0, limit).map((k) => matched[k] as number)
  const white = listed.slice(0, Math.max(0, limit - chosen.length))
  const rows = {
    length: chosen.length + white.length,
    *[Symbol.iterator](): Generator<ListRow> {
      for (const i of chosen) {
        const e = entries[i] as Entry
        yield entryRow(e, isBlockActive(e, now))
      }
      for (const w of white) yield whitelistRow(w.cidr, w.comment)
    },
  }
  return {counts, total, rows}
}
