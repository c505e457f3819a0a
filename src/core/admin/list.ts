/**
 * `list`'s rows from the database: every entry with its state, blocked first,
 * then watching, each by last seen (newest first), then by address; then the
 * admin's whitelist as it is kept. Linear but for one sort, whose keys
 * (state, last seen, the address's sort key) are made once per entry, not at
 * every comparison; times are written without a Date per value.
 */
import {isBlockActive, neverBlockReason} from '../decisions/decide.js'
import {ipSortKey, type NetworkList} from '../net/ip.js'
import type {StoreData} from '../store/schema.js'
import {MAX_TIME} from '../store/values.js'

export type EntryState = 'blocked' | 'watching' | 'whitelisted'

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

export function listRows(data: StoreData, whitelist: NetworkList, now: number): ListRow[] {
  const rows: ListRow[] = []
  const seen: number[] = []
  for (const e of data.entries) {
    if (neverBlockReason(e.ip, whitelist) !== null) continue
    const blocked = isBlockActive(e, now)
    seen.push(e.lastSeen)
    rows.push({
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
    })
  }
  // One number per row for state and last seen (blocked first, then newer first: below 2^50, exact in a double).
  const rank = new Float64Array(rows.length)
  for (let i = 0; i < rows.length; i++) rank[i] = (rows[i]?.state === 'blocked' ? 0 : 2 ** 49) + (MAX_TIME - (seen[i] ?? 0))
  const keys = rows.map((r) => ipSortKey(r.ip))
  const order = rows.map((_, i) => i)
  // Then by address; equal rows keep the database's order.
  order.sort((a, b) => {
    const d = (rank[a] as number) - (rank[b] as number)
    if (d !== 0) return d
    const ka = keys[a] as string
    const kb = keys[b] as string
    return ka < kb ? -1 : ka > kb ? 1 : a - b
  })
  const out = order.map((i) => rows[i] as ListRow)
  for (const w of data.whitelist) {
    out.push({
      ip: w.cidr,
      state: 'whitelisted',
      instance: null,
      attempts: 0,
      firstSeen: null,
      lastSeen: null,
      blockedAt: null,
      blockedUntil: null,
      lastUser: null,
      blocks: 0,
      comment: w.comment,
    })
  }
  return out
}
