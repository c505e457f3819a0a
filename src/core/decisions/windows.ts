/**
 * The rules an address is blocked by: the first rule (`maxAttempts` failures
 * within `periodMinutes`) and the `windows` beside it, each an exact sliding
 * window over the failures' own log times.
 *
 * - A failures window `{maxAttempts, periodMinutes}`: that many counted
 *   failures within the period (first to last inclusive), as the first rule.
 *   It works on the entry's failure times, which are kept for the longest
 *   window of either kind.
 * - A user window `{maxUsers, periodMinutes}`: that many distinct user names
 *   tried within the period. A phone retrying one stale password never trips
 *   it; a scanner walking a list of names does. Names are compared as
 *   accounts (trimmed, lowercased: `Alice` and `alice ` are one) and kept as
 *   a 16-bit tag beside each failure time (nameTag), never as text: the user
 *   windows read the failure times themselves, so a failure costs them two
 *   bytes and one sweep (findUsers). Two names with one tag count as one:
 *   never more names than were tried. How many failure times an entry keeps
 *   is bounded by the first rule: fewer than maxAttempts in any periodMinutes.
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
  /** The longest window of any kind: how long failure times (and their names' tags) are kept, and what the store keeps an entry's counting for. */
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
  return {failures, users, longestMs: Math.max(...failures.map((w) => w.periodMs), ...users.map((w) => w.periodMs))}
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

/** A name's tag: its hash folded to 16 bits, never 0 (0 is a failure whose name is not known: it counts as no name). */
export function nameTag(user: string): number {
  const h = nameHash(user)
  return ((h ^ (h >>> 16)) & 0xffff) || 1
}

/** How many tags an entry's `tried` may hold (one per failure time kept). */
export const MAX_TRIED = 65_536
/** What an entry's `tried` holds: 4 lowercase hexadecimal digits per tag. */
export const TRIED_PATTERN = /^(?:[0-9a-f]{4})*$/

/** Bytes of tags being written as text (grown when needed). */
let tagBytes = Buffer.alloc(128)

/**
 * Tags as an entry keeps them: 4 hexadecimal digits each, in the order of
 * the failure times. Made in one piece (Buffer's hex), not joined from
 * pieces: a string an entry keeps is then one flat string, not a tree.
 */
export function tagsText(tags: ArrayLike<number>, base: number, n: number): string {
  if (tagBytes.length < 2 * n) tagBytes = Buffer.alloc(4 * n)
  for (let i = 0; i < n; i++) tagBytes.writeUInt16BE(tags[base + i] as number, 2 * i)
  return tagBytes.toString('hex', 0, 2 * n)
}

/** The tags of an entry's `tried` for `n` failure times: all 0 (unknown) when absent or of another length (a database written without them). */
export function tagsOf(text: string | undefined, n: number): number[] {
  const out = new Array<number>(n).fill(0)
  if (text === undefined || text.length !== 4 * n) return out
  for (let i = 0; i < n; i++) out[i] = Number.parseInt(text.slice(4 * i, 4 * i + 4), 16)
  return out
}

/** Per tag, how many of the failures in the window looked at hold it (all 0 between calls). */
const seen = new Uint32Array(0x10000)

/**
 * The earliest time a window of periodMs holding the failure at index `at`
 * of sorted `times` (from `tBase`, `length` of them; their tags from
 * `gBase` in `tags`) holds `count` distinct names: the time of the failure
 * that completes it, or -1. Only windows holding the new failure are looked
 * at: the others were looked at when their own last failure came. A window
 * holding a time T and count names, cut at its last failure t ≥ T, is
 * [t − periodMs, t]: so only the windows ending at the failures from T to
 * T + periodMs are counted, in one sweep.
 */
export function findUsers(times: ArrayLike<number>, tBase: number, tags: ArrayLike<number>, gBase: number, length: number, at: number, count: number, periodMs: number): number {
  if (at < 0 || length < count) return -1
  const t0 = times[tBase + at] as number
  let left = at
  while (left > 0 && (times[tBase + left - 1] as number) >= t0 - periodMs) left--
  let distinct = 0
  let found = -1
  let right = left
  for (; right < length; right++) {
    const t = times[tBase + right] as number
    if (t > t0 + periodMs) break
    const g = tags[gBase + right] as number
    if (g !== 0) {
      const c = seen[g] as number
      seen[g] = c + 1
      if (c === 0) distinct++
    }
    while ((times[tBase + left] as number) < t - periodMs) {
      const lg = tags[gBase + left] as number
      if (lg !== 0) {
        const c = (seen[lg] as number) - 1
        seen[lg] = c
        if (c === 0) distinct--
      }
      left++
    }
    if (right >= at && distinct >= count) {
      found = t
      right++
      break
    }
  }
  for (let i = left; i < right; i++) seen[tags[gBase + i] as number] = 0
  return found
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
