/**
 * Accounts under attack (`accountAlert`): when `minAddresses` distinct
 * addresses have failed on one account (user name) of an instance within
 * `periodMinutes`, the account is reported once, with how many addresses
 * failed on it and when its attack began and last went on.
 *
 * Only failures the decider counted reach it (a new attempt of an address
 * that may be blocked: not a twin line, not a rate-limit refusal caused by
 * others, not a never-block address such as the office's own network), so an
 * attacker cannot make an account look attacked with lines that count for
 * nobody.
 *
 * The account is the user name as login_rate_limit counts it (trimmed,
 * lowercased: `Alice` and `alice ` are one account), cut as entries cut
 * names (store/bounds.ts). User names are attacker text: what is kept of
 * them is bounded (MAX_ACCOUNTS accounts, the least recently failed dropped
 * first; per account the distinct addresses of its window, at most
 * MAX_WINDOW_ADDRESSES, each with its newest failure), and every output
 * escapes them. The count shown is the most distinct addresses one window
 * held.
 *
 * An attack is an episode: it begins with the first failure on an account
 * that has none in the last periodMinutes, and ends when periodMinutes pass
 * without one. It is reported once, when the window first holds
 * minAddresses distinct addresses; the episode's record is kept for
 * `list --accounts` until KEEP_MS after its last failure.
 *
 * The window is exact over log time for lines in time order (each address's
 * newest failure is kept, and an address counts while that is within
 * periodMinutes of the newest failure on the account); a line older than the
 * account's newest failure by more than the period cannot complete a window.
 */
import type {AccountRecord} from '../store/schema.js'
import {cutUser, MAX_ACCOUNTS, MAX_WINDOW_ADDRESSES} from '../store/bounds.js'
import {accountOf, detached} from './attempts.js'

export interface AccountAlertSettings {
  minAddresses: number
  periodMinutes: number
  /** Block the addresses that failed on the account at least twice in the attack's window (from the report on). */
  block?: boolean
}

/** An address to block because of an account under attack (accountAlert.block). */
export interface AccountBlock {
  instance: string
  ip: string
  account: string
  /** Its failure that made it due: the report, or its second failure on the account after it. */
  at: number
}

/** A reported episode is listed this long after its last failure. */
export const KEEP_MS = 7 * 86_400_000

export interface AccountAlert {
  instance: string
  account: string
  /** The most distinct addresses that failed on it within one window of this episode (at most MAX_WINDOW_ADDRESSES). */
  addresses: number
  /** The episode's first and latest failure. */
  first: number
  last: number
  /** The failure that completed the window. */
  at: number
}

/** The account a user name names, as kept: trimmed, lowercased, cut. */
export function accountKey(user: string): string {
  return cutUser(accountOf(user))
}

interface Tracked {
  record: AccountRecord
  /** Each address of the window and its newest failure on this account. */
  recent: Map<string, number>
  /** How many failures each address of the window made on the account (absent: one). */
  counts: Map<string, number>
}

export class AccountWatch {
  private readonly periodMs: number
  private readonly tracked = new Map<string, Tracked>()
  private pending: AccountBlock[] = []

  constructor(
    saved: readonly AccountRecord[],
    private readonly settings: AccountAlertSettings,
  ) {
    this.periodMs = settings.periodMinutes * 60_000
    for (const r of saved) {
      this.tracked.set(keyOf(r.instance, r.account), {
        record: {...r, recent: [...r.recent]},
        recent: new Map(r.recent.map((x) => [x.ip, x.time])),
        counts: new Map(r.recent.filter((x) => x.n !== undefined && x.n > 1).map((x) => [x.ip, x.n as number])),
      })
    }
  }

  /** A counted failure on `user` from `ip`: the alert when it completes the window of an episode not yet reported. */
  add(instance: string, user: string, ip: string, time: number): AccountAlert | null {
    const account = accountKey(user)
    if (account === '') return null
    const key = keyOf(instance, account)
    let t = this.tracked.get(key)
    if (t !== undefined && time > t.record.last + this.periodMs) {
      // A new episode: the last one ended a period ago.
      this.tracked.delete(key)
      t = undefined
    }
    if (t === undefined) {
      t = {record: {instance, account: detached(account), first: time, last: time, addresses: 0, reportedAt: null, recent: []}, recent: new Map(), counts: new Map()}
      this.tracked.set(key, t)
      this.bound()
    } else {
      // Most recently failed last: the Map's order is the eviction order.
      this.tracked.delete(key)
      this.tracked.set(key, t)
    }
    const r = t.record
    if (time < r.first) r.first = time
    if (time > r.last) r.last = time
    const {recent, counts} = t
    const n = recent.has(ip) ? (counts.get(ip) ?? 1) + 1 : 1
    if ((recent.get(ip) ?? -Infinity) < time) {
      // Most recent last: the Map's order is the order they leave in.
      recent.delete(ip)
      recent.set(ip, time)
    }
    if (n > 1) counts.set(ip, n)
    // Only the window before the newest failure counts.
    const from = r.last - this.periodMs
    for (const [a, at] of recent) {
      if (at < from) {
        recent.delete(a)
        counts.delete(a)
      }
    }
    for (const a of recent.keys()) {
      if (recent.size <= MAX_WINDOW_ADDRESSES) break
      recent.delete(a)
      counts.delete(a)
    }
    if (recent.size > r.addresses) r.addresses = recent.size
    if (r.reportedAt !== null) {
      // Reported: an address's second failure on the account within the window blocks it.
      if (this.settings.block === true && n === 2 && recent.has(ip)) this.pending.push({instance, ip, account: r.account, at: time})
      return null
    }
    if (recent.size < this.settings.minAddresses) return null
    r.reportedAt = time
    if (this.settings.block === true) {
      for (const [a, c] of counts) if (c >= 2 && recent.has(a)) this.pending.push({instance, ip: a, account: r.account, at: time})
    }
    return {instance, account: r.account, addresses: r.addresses, first: r.first, last: r.last, at: time}
  }

  /** The addresses due to be blocked since the last call (accountAlert.block), in the order they became due. */
  takeBlocks(): AccountBlock[] {
    if (this.pending.length === 0) return []
    const out = this.pending
    this.pending = []
    return out
  }

  /** What is kept between runs: episodes still open, and reported ones for KEEP_MS after their last failure. */
  save(now: number): AccountRecord[] {
    const out: AccountRecord[] = []
    for (const {record, recent} of this.tracked.values()) {
      const open = record.last + this.periodMs >= now
      if (!open && (record.reportedAt === null || record.last + KEEP_MS < now)) continue
      const n = this.tracked.get(keyOf(record.instance, record.account))?.counts
      out.push({...record, recent: open ? [...recent].map(([ip, time]) => (n?.has(ip) === true ? {ip, time, n: n.get(ip) as number} : {ip, time})) : []})
    }
    return out
  }

  private bound(): void {
    for (const key of this.tracked.keys()) {
      if (this.tracked.size <= MAX_ACCOUNTS) return
      this.tracked.delete(key)
    }
  }
}

function keyOf(instance: string, account: string): string {
  return `${instance}\u0000${account}`
}

/** The reported episodes, newest last failure first: `list --accounts`. */
export function reportedAccounts(records: readonly AccountRecord[]): AccountRecord[] {
  return records.filter((r) => r.reportedAt !== null).sort((a, b) => b.last - a.last || (a.account < b.account ? -1 : a.account > b.account ? 1 : 0))
}
