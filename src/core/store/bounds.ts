/**
 * What keeps the database small whatever an attack sends: per entry, a few
 * user names of bounded length; in total, a ceiling (`maxEntries`).
 *
 * User names come from the log, so from the attacker: up to a kilobyte each
 * (Roundcube keeps 256 bytes of one in its userlogins log, its errors log the
 * whole name). They are kept for the admin's digest only, which shows each at
 * most MAX_USER_LENGTH characters wide (notify/digest.ts), and `list`, which
 * shows the last one 32 wide: a longer name is stored cut, with an ellipsis,
 * as the digest would show it. MAX_USERS names are kept per entry, the most
 * recent: enough to tell a dictionary attack on one account from a spray
 * over many, not the attacker's whole list.
 *
 * The ceiling: when a run leaves more than `maxEntries` entries, the entries
 * that hold no block go, oldest first: watching entries (failures inside the
 * window, never blocked) by last seen, then the history of expired blocks
 * (kept for escalation) by when it was last relevant. An entry whose block
 * has not ended yet is never dropped, nor the admin's whitelist (which is not
 * an entry), so no block is ever lost to the ceiling; the price is that an
 * attacker with more addresses than the ceiling can push its own oldest
 * watching addresses out before they reach maxAttempts. Time and memory are
 * linear in the entries (one sort of the droppable ones).
 */
import type {Entry, StoreData} from './schema.js'

/** Accounts under attack tracked at most (decisions/accounts.ts; the least recently failed go first): a spray over a million names stays small. */
export const MAX_ACCOUNTS = 5_000
/** Addresses of one account's window kept at most (the count shown stops there); accountAlert.minAddresses is at most this, and so is networkBlock.minAddresses (per network). */
export const MAX_WINDOW_ADDRESSES = 128
/** Networks with an open window tracked at most (decisions/networks.ts NetworkWatch; the least recently failed go first): a flood from a million networks stays small. */
export const MAX_NETWORKS = 5_000

/** User names kept per entry, the most recent. */
export const MAX_USERS = 3
/** Characters of a user name kept (the digest's width); a longer one ends in an ellipsis. */
export const MAX_USER_LENGTH = 64

/** The user name as stored: at most MAX_USER_LENGTH UTF-16 units, a cut one ending in "…", never through a surrogate pair. */
export function cutUser(user: string): string {
  if (user.length <= MAX_USER_LENGTH) return user
  let end = MAX_USER_LENGTH - 1
  const last = user.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${user.slice(0, end)}…`
}

/** Records `user` (already cut) as the most recent of `users`: distinct, most recent last, at most MAX_USERS. */
export function addUser(users: string[], user: string): void {
  const seen = users.indexOf(user)
  if (seen !== -1) users.splice(seen, 1)
  users.push(user)
  while (users.length > MAX_USERS) users.shift()
}

/** `users` as stored: each cut, distinct (the most recent of equal ones kept), the last MAX_USERS. */
export function boundUsers(users: readonly string[]): string[] {
  const out: string[] = []
  for (let i = users.length - 1; i >= 0 && out.length < MAX_USERS; i--) {
    const u = cutUser(users[i] ?? '')
    if (!out.includes(u)) out.push(u)
  }
  return out.reverse()
}

/** The default of maxEntries (see the configuration's maxEntries). */
export const DEFAULT_MAX_ENTRIES = 200_000

export interface CeilingResult {
  /** Watching entries dropped (never blocked, failures inside the window). */
  watching: number
  /** Entries that held only the history of expired blocks, dropped. */
  history: number
  /** Entries left over the ceiling: all of them hold a block not yet ended. */
  over: number
}

/**
 * Drops entries until at most `maxEntries` are left, in the order the module
 * comment gives; an entry with `blockedAt` set (a block not yet ended, or one
 * ended but not yet expired by this run) is never dropped.
 */
export function keepWithin(data: StoreData, maxEntries: number): CeilingResult {
  const result: CeilingResult = {watching: 0, history: 0, over: 0}
  const excess = data.entries.length - maxEntries
  if (excess <= 0) return result
  // Droppable entries: index and rank (watching before history, then oldest first), sorted once.
  const idx: number[] = []
  const rank = new Float64Array(data.entries.length)
  data.entries.forEach((e, i) => {
    if (e.blockedAt !== null) return
    idx.push(i)
    // History ranks after every watching entry: its time is shifted past any real one (MAX_TIME is below 3e14; 1e15 + it is exact).
    rank[i] = e.blocks === 0 ? e.lastSeen : 1e15 + Math.max(e.lastBlockEnd ?? 0, e.lastSeen)
  })
  idx.sort((a, b) => (rank[a] ?? 0) - (rank[b] ?? 0) || a - b)
  const drop = new Uint8Array(data.entries.length)
  const n = Math.min(excess, idx.length)
  for (let k = 0; k < n; k++) {
    const i = idx[k] ?? 0
    drop[i] = 1
    if ((data.entries[i] as Entry).blocks === 0) result.watching++
    else result.history++
  }
  data.entries = data.entries.filter((_, i) => drop[i] === 0)
  result.over = Math.max(0, data.entries.length - maxEntries)
  return result
}

/** The one line a run prints when the ceiling dropped entries, or null. */
export function ceilingWarning(r: CeilingResult, maxEntries: number): string | null {
  if (r.watching === 0 && r.history === 0 && r.over === 0) return null
  const dropped: string[] = []
  if (r.watching > 0) dropped.push(`${r.watching} watching entr${r.watching === 1 ? 'y' : 'ies'}`)
  if (r.history > 0) dropped.push(`${r.history} entr${r.history === 1 ? 'y' : 'ies'} of expired blocks`)
  const what = dropped.length === 0 ? 'nothing could be dropped' : `dropped ${dropped.join(' and ')}, oldest first`
  const over = r.over > 0 ? `; ${r.over} more blocks in force than it allows are kept` : ''
  return `the database reached maxEntries (${maxEntries}): ${what}; no block was lost${over}; raise maxEntries in the configuration to keep more`
}
