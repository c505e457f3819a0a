/**
 * The rules an address is blocked by: the first rule (`maxAttempts` failures
 * within `periodMinutes`) and the `windows` beside it, each an exact sliding
 * window over the failures' own log times.
 *
 * - A failures window `{maxAttempts, periodMinutes}`: that many counted
 *   failures within the period (first to last inclusive), as the first rule.
 *   It works on the entry's failure times, which are kept for the longest
 *   failures window.
 * - A user window `{maxUsers, periodMinutes}`: that many distinct user names
 *   tried within the period. A phone retrying one stale password never trips
 *   it; a scanner walking a list of names does. Names are compared as
 *   accounts (trimmed, lowercased: `Alice` and `alice ` are one) and kept as
 *   a 32-bit hash with the time of the failure, never as text: per entry at
 *   most MAX_TRIED (time, hash) pairs, within the longest user window, thinned
 *   without changing any decision (see thinTried).
 *
 * A successful login relaxes the windows, never the first rule: a window does
 * not block an address that logged in successfully within that window's
 * period of the failure (before or after it in log time). An office NAT logs
 * in all day and a scanner never does, so many users behind one address with
 * their typos are not blocked by the long windows, while the first rule still
 * stops a burst from anywhere.
 *
 * Each rule is named in the entry it blocked (`rule`: RULE_PATTERN), so
 * `list` and `--verbose` say which one it was.
 */
import {accountOf} from './attempts.js'
import {cutUser, MAX_USER_LENGTH} from '../store/bounds.js'

export type WindowSetting = {maxAttempts: number; periodMinutes: number} | {maxUsers: number; periodMinutes: number}

/**
 * The windows a configuration without `windows` has. A slow guesser: 24
 * failures within 60 minutes (one every 2.5 minutes for an hour) — an address
 * failing 5 times every 10 minutes all day is blocked within its first hour,
 * while a phone retrying a stale password every 3 minutes (20 an hour) is not.
 * A scanner: 5 distinct user names within 60 minutes — a user who forgot a
 * password tries one or two forms of their name, not five.
 */
export const DEFAULT_WINDOWS: readonly WindowSetting[] = [
  {maxAttempts: 24, periodMinutes: 60},
  {maxUsers: 5, periodMinutes: 60},
]

/** How many windows a configuration may have beside the first rule. */
export const MAX_WINDOWS = 8
/** The most distinct user names a user window may ask for. */
export const MAX_WINDOW_USERS = 32
/** The most (time, name hash) pairs an entry keeps for the user windows; past it the oldest go. */
export const MAX_TRIED = 64

/** What an entry's `rule` holds: `failures:K/M`, `users:N/M`, `network:N/M`, `account:N/M` (M in minutes), or `hand` (rcguard block). */
export const RULE_PATTERN = /^(hand|(failures|users|network|account):[0-9]{1,5}\/[0-9]{1,7}(\.[0-9]{1,6})?)$/

export interface FailureWindow {
  kind: 'failures'
  count: number
  periodMs: number
  /** The rule's name as an entry keeps it. */
  rule: string
  /** The first rule: no success relaxes it. */
  first: boolean
}

export interface UserWindow {
  kind: 'users'
  count: number
  periodMs: number
  rule: string
}

export interface Windows {
  /** The first rule first, then the failures windows in the configuration's order. */
  failures: FailureWindow[]
  users: UserWindow[]
  /** How long failure times are kept: the longest failures window. */
  keepFailuresMs: number
  /** How long (time, name) pairs are kept: the longest user window; 0 without one. */
  keepTriedMs: number
  /** The shortest user window: pairs closer than it are thinned (thinTried). */
  thinMs: number
  /** The longest window of any kind (what the store keeps an entry's counting for). */
  longestMs: number
}

/** A period in minutes as a rule names it: an integer, or up to 6 decimals. */
function minutesText(minutes: number): string {
  return Number.isInteger(minutes) ? String(minutes) : String(Number(minutes.toFixed(6)))
}

export function ruleName(kind: 'failures' | 'users' | 'network' | 'account', count: number, periodMinutes: number): string {
  return `${kind}:${count}/${minutesText(periodMinutes)}`
}

/** A rule's name in words: `failures:24/60` → "24 failures within 60 min". */
export function ruleText(rule: string): string {
  if (rule === 'hand') return 'rcguard block'
  const m = /^([a-z]+):([0-9]+)\/([0-9.]+)$/.exec(rule)
  if (m === null) return rule
  const [, kind, count, period] = m
  const what = kind === 'failures' ? 'failures' : kind === 'users' ? 'user names' : kind === 'network' ? 'addresses of the network' : 'addresses on one account'
  return `${count} ${what} within ${period} min`
}

/** A rule's name for a table cell: `failures:24/60` → "24 in 60m", `users:5/60` → "5 users in 60m". */
export function ruleShort(rule: string): string {
  if (rule === 'hand') return 'by hand'
  const m = /^([a-z]+):([0-9]+)\/([0-9.]+)$/.exec(rule)
  if (m === null) return rule
  const [, kind, count, period] = m
  const what = kind === 'failures' ? '' : kind === 'users' ? ' users' : kind === 'network' ? ' addrs' : ' on account'
  return `${count}${what} in ${period}m`
}

export function windowsOf(settings: {maxAttempts: number; periodMinutes: number; windows?: readonly WindowSetting[]}): Windows {
  const failures: FailureWindow[] = [
    {kind: 'failures', count: settings.maxAttempts, periodMs: settings.periodMinutes * 60_000, rule: ruleName('failures', settings.maxAttempts, settings.periodMinutes), first: true},
  ]
  const users: UserWindow[] = []
  for (const w of settings.windows ?? []) {
    if ('maxUsers' in w) users.push({kind: 'users', count: w.maxUsers, periodMs: w.periodMinutes * 60_000, rule: ruleName('users', w.maxUsers, w.periodMinutes)})
    else failures.push({kind: 'failures', count: w.maxAttempts, periodMs: w.periodMinutes * 60_000, rule: ruleName('failures', w.maxAttempts, w.periodMinutes), first: false})
  }
  const keepFailuresMs = Math.max(...failures.map((w) => w.periodMs))
  const keepTriedMs = users.length === 0 ? 0 : Math.max(...users.map((w) => w.periodMs))
  const thinMs = users.length === 0 ? 0 : Math.min(...users.map((w) => w.periodMs))
  return {failures, users, keepFailuresMs, keepTriedMs, thinMs, longestMs: Math.max(keepFailuresMs, keepTriedMs)}
}

/**
 * The hash a user window compares names by: FNV-1a over the account's UTF-16
 * code units (trimmed, lowercased, cut as entries cut names), as an unsigned
 * 32-bit integer. Two names with one hash count as one name: never more
 * names than were tried.
 */
export function nameHash(user: string): number {
  let h = 0x811c9dc5
  // Most names: printable ASCII without blanks, at most the cut's length; lowercased here, without a copy.
  if (user.length <= MAX_USER_LENGTH) {
    let i = 0
    for (; i < user.length; i++) {
      let c = user.charCodeAt(i)
      if (c <= 0x20 || c > 0x7e) break
      if (c >= 0x41 && c <= 0x5a) c += 0x20
      h ^= c
      h = Math.imul(h, 0x01000193)
    }
    if (i === user.length) return h >>> 0
    h = 0x811c9dc5
  }
  const account = cutUser(accountOf(user))
  for (let i = 0; i < account.length; i++) {
    h ^= account.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/**
 * Adds a (time, hash) pair to a sorted flat list [t0, h0, t1, h1, …], drops
 * the pairs older than the newest by more than `keepMs`, thins the pairs of
 * the same name, and keeps at most MAX_TRIED. In place.
 *
 * Thinning: of three times t1 < t2 < t3 of one name with t3 − t1 ≤ thinMs,
 * t2 is dropped. Any period of at most thinMs (every user window's) that
 * holds t2 holds t1 or t3 as well, so which names a window holds never
 * changes; what remains of one name is then spaced more than thinMs apart
 * every second time.
 */
export function addTried(tried: number[], time: number, hash: number, keepMs: number, thinMs: number): void {
  let i = tried.length
  while (i > 0 && (tried[i - 2] as number) > time) i -= 2
  if (i === tried.length) tried.push(time, hash)
  else tried.splice(i, 0, time, hash)
  const newest = tried[tried.length - 2] as number
  let drop = 0
  while (drop < tried.length && (tried[drop] as number) < newest - keepMs) drop += 2
  if (drop > 0) tried.splice(0, drop)
  thinTried(tried, hash, thinMs)
  if (tried.length > MAX_TRIED * 2) capTried(tried)
}

/**
 * Past MAX_TRIED pairs, drops the oldest pair of a name that has a newer one
 * (each name keeps its newest time, so the longest window still sees every
 * name tried within it); only when all are distinct names, the oldest pair.
 */
function capTried(tried: number[]): void {
  let drop = 0
  for (let i = 0; i < tried.length; i += 2) {
    const h = tried[i + 1]
    let later = false
    for (let j = i + 2; j < tried.length; j += 2) {
      if (tried[j + 1] === h) {
        later = true
        break
      }
    }
    if (later) {
      drop = i
      break
    }
  }
  tried.splice(drop, 2)
}

/** Marks a thinned pair (no hash is negative) until the list is compacted. */
const GONE = -1

/** Drops the middle one of every three times of `hash` spanning at most thinMs (see addTried), in one pass. */
function thinTried(tried: number[], hash: number, thinMs: number): void {
  // a: the time of the name's last pair kept; b: the index of the pair after it, still undecided.
  let a = Number.NaN
  let b = -1
  let gone = 0
  for (let i = 0; i < tried.length; i += 2) {
    if (tried[i + 1] !== hash) continue
    const t = tried[i] as number
    if (b !== -1) {
      if (t - a <= thinMs) {
        tried[b + 1] = GONE
        gone++
      } else a = tried[b] as number
    } else if (Number.isNaN(a)) {
      a = t
      continue
    }
    b = i
  }
  if (gone === 0) return
  let w = 0
  for (let i = 0; i < tried.length; i += 2) {
    if (tried[i + 1] === GONE) continue
    tried[w] = tried[i] as number
    tried[w + 1] = tried[i + 1] as number
    w += 2
  }
  tried.length = w
}

const counts = new Map<number, number>()

/**
 * The first time a window of periodMs holding `at` holds `count` distinct
 * names, in a sorted flat list: the time of the pair that completes it, or
 * -1. Only windows holding `at` (the failure just added) are looked at: the
 * others were looked at when their own last failure came.
 */
export function findUsers(tried: readonly number[], count: number, periodMs: number, at: number): number {
  if (tried.length < count * 2) return -1
  counts.clear()
  let distinct = 0
  let left = 0
  // The window that ends at `at` itself, whose pair thinning may have dropped: once every pair up to it is in.
  let endAt = false
  const drop = (before: number): void => {
    while (left < tried.length && (tried[left] as number) < before) {
      const lh = tried[left + 1] as number
      const lc = (counts.get(lh) as number) - 1
      if (lc === 0) {
        counts.delete(lh)
        distinct--
      } else counts.set(lh, lc)
      left += 2
    }
  }
  for (let right = 0; right < tried.length; right += 2) {
    const t = tried[right] as number
    if (t > at + periodMs) break
    if (!endAt && t > at) {
      endAt = true
      drop(at - periodMs)
      if (distinct >= count) return at
    }
    const h = tried[right + 1] as number
    const c = counts.get(h) ?? 0
    counts.set(h, c + 1)
    if (c === 0) distinct++
    drop(t - periodMs)
    if (t >= at && distinct >= count) return t
  }
  if (!endAt) {
    drop(at - periodMs)
    if (distinct >= count) return at
  }
  return -1
}

/**
 * The time of the failure that first completes `count` failures within
 * periodMs in a window holding the failure at index `at` of sorted `times`
 * (`base` the index of times[0] in `list`), or -1.
 */
export function findFailures(list: ArrayLike<number>, base: number, length: number, at: number, count: number, periodMs: number): number {
  for (let end = Math.max(at, count - 1); end < length && end - count + 1 <= at; end++) {
    if ((list[base + end] as number) - (list[base + end - count + 1] as number) <= periodMs) return list[base + end] as number
  }
  return -1
}
