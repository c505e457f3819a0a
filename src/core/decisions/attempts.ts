/**
 * Attempts: which parsed failures are new login attempts of the address
 * they name, before any window counts them.
 *
 * - **Twins.** Roundcube 1.0–1.6 with log_logins logs one attempt twice: the
 *   errors log's IMAP line (F1) and, about a second later, the userlogins line
 *   (F2), with the same session prefix. Each line can be the twin of one line
 *   of the other shape only; a pair counts once, whichever log is read first
 *   and however long the burst. A userlogins line that is ambiguous alone (its
 *   readings name several senders) is settled by its twin: the errors log
 *   lowercases the user name, which leaves it one reading.
 * - **Rate-limit refusals.** `(error: 4)` is Roundcube refusing an account
 *   that login_rate_limit locked, before any password is tried, and it locks
 *   the account for everyone: attackers from many addresses can keep an
 *   account locked and make its owner's correct password "fail". A refusal
 *   counts only when every failure on that account in the minute before it
 *   came from the same address (its own flood); otherwise it is someone
 *   else's doing and counts against nobody.
 *
 * What must outlive a run (the unmatched lines of the last seconds, the
 * account failures of the last minute) is kept in the store's `ledger`,
 * pruned to those horizons.
 */
import type {LedgerData, TwinRecord} from '../store/schema.js'
import type {SourcedEvent} from './decide.js'
import {TwinStore} from './twins.js'

/** Two log lines of one attempt (F1 in errors, F2 in userlogins) are at most this far apart. */
export const DUPLICATE_WINDOW_MS = 5_000
/** Lines from parallel PHP workers can be this much out of order. */
export const SKEW_MS = 60_000
/** login_rate_limit's window: failures on an account in this span lock it (plus a few seconds of slack). */
export const RATE_LIMIT_WINDOW_MS = 65_000
/** Unmatched twin lines kept between runs: this far back from the newest line read. */
const TWIN_KEEP_MS = 2 * DUPLICATE_WINDOW_MS
/** At most this many records of each kind are kept between runs (the newest). */
const MAX_KEPT = 100_000

/**
 * A copy of `s` that holds only its own characters. In V8 a string cut out of
 * another (slice, a regular expression's capture) keeps the whole of that one
 * alive: what outlives the log line it came from (an entry's user names, a
 * twin record's session) is kept as a copy, so a long read holds the names,
 * not the lines. (Addresses need none: canonicalIp's strings are their own.)
 */
export function detached(s: string): string {
  // Shorter strings are always copies; concatenating flattens, and the slice then refers to the new flat string.
  return s.length < 13 ? s : ` ${s}`.slice(1)
}

export interface AttemptVerdict {
  action: 'duplicate' | 'ignored'
  why: string
}


/** The account a user name logs into, as login_rate_limit counts it. */
export function accountOf(user: string): string {
  return user.trim().toLowerCase()
}

export class AttemptLedger {
  private readonly twins = new TwinStore(DUPLICATE_WINDOW_MS)
  private readonly accounts = new Map<string, {instance: string; account: string; list: {ip: string; time: number}[]; prune: number}>()
  private readonly newest = new Map<string, number>()

  private judged = 0

  /**
   * `oneLog`: instances read from a single log. Their lines are in time order
   * (give or take the skew), so a line's twin can only be near it and what is
   * older can be dropped as the read goes on; with several logs, one is read
   * after the other and the lines wait for the whole run.
   */
  constructor(
    data: LedgerData,
    private readonly oneLog: ReadonlySet<string> = new Set(),
  ) {
    for (const r of data.twins) {
      this.twins.add(r.instance, r.session, r.grammar, r.time, r.ip, r.senders, r.counted, r)
      this.seen(r.instance, r.time)
    }
    for (const a of data.accounts) this.addAccount(a.instance, a.account, a.ip, a.time)
  }

  /** Keeps memory bounded on a long read: drops what no later line of the read can need. */
  private prune(): void {
    this.accounts.forEach((rec, key) => {
      const horizon = (this.newest.get(rec.instance) ?? 0) - RATE_LIMIT_WINDOW_MS - SKEW_MS
      if (rec.list.every((a) => a.time < horizon)) this.accounts.delete(key)
    })
    this.twins.prune((instance) => (this.oneLog.has(instance) ? (this.newest.get(instance) ?? 0) - DUPLICATE_WINDOW_MS - SKEW_MS : undefined))
  }

  private addTwin(instance: string, session: string, grammar: 'F1' | 'F2', time: number, ip: string | null, senders: string[] | undefined, counted: boolean): void {
    this.twins.add(instance, session, grammar, time, ip, senders, counted)
    this.seen(instance, time)
  }

  private addAccount(instance: string, account: string, ip: string, time: number): void {
    const key = `${instance}\u0000${account}`
    const rec = this.accounts.get(key)
    if (rec === undefined) {
      this.accounts.set(key, {instance, account, list: [{ip, time}], prune: 256})
    } else {
      rec.list.push({ip, time})
      // A flood on one account: only the last window (and skew) can lock it. Pruned when the list has
      // doubled since the last time, so that a long flood costs linear time.
      if (rec.list.length > rec.prune) {
        const newest = rec.list.reduce((m, a) => Math.max(m, a.time), time)
        rec.list = rec.list.filter((a) => a.time >= newest - RATE_LIMIT_WINDOW_MS - SKEW_MS)
        rec.prune = Math.max(256, rec.list.length * 2)
      }
    }
    this.seen(instance, time)
  }

  /** The instance seen last and its newest time (as in `newest`): most lines are of the instance before them. */
  private seenInstance: string | undefined
  private seenNewest = -Infinity

  private seen(instance: string, time: number): void {
    if (instance !== this.seenInstance) {
      this.seenInstance = instance
      this.seenNewest = this.newest.get(instance) ?? -Infinity
    }
    if (time > this.seenNewest) {
      this.seenNewest = time
      this.newest.set(instance, time)
    }
  }

  /**
   * The closest unmatched line of the other shape that can be this one's
   * twin (a row of the twin store, -1: none): for a line counted against
   * `ip`, a line of that address or an ambiguous one naming it; for an
   * ambiguous line, a line of one of its `senders`. Of two equally close,
   * the one of the earlier bucket, then the one that came first.
   */
  private findTwin(event: SourcedEvent, ip: string | null, senders: readonly string[]): number {
    const grammar = event.grammar as 'F1' | 'F2'
    const session = event.session ?? ''
    return ip !== null ? this.twins.findFor(event.instance, session, grammar, event.time, DUPLICATE_WINDOW_MS, ip) : this.twins.findForSenders(event.instance, session, grammar, event.time, DUPLICATE_WINDOW_MS, senders)
  }

  /**
   * Judges one failure before the windows see it: null when it is a new
   * attempt to count (event.counted stays as the parser left it), else why
   * it is not. Call in read order.
   */
  judge(event: SourcedEvent): AttemptVerdict | null {
    if (event.outcome !== 'failure') return null
    this.seen(event.instance, event.time)
    if (++this.judged % 8192 === 0) this.prune()
    const twinShape = event.grammar === 'F1' || event.grammar === 'F2'
    if (event.doubt === 'ambiguous' && twinShape) {
      const senders = event.senders ?? []
      // Who may have failed on the account: every sender the line could be from (a refusal that follows
      // counts for none of them, nor for anyone else).
      if (event.grammar === 'F2' && event.errorCode !== 4) {
        for (const r of event.readings ?? []) this.addAccount(event.instance, detached(accountOf(r.user)), r.ip, event.time)
      }
      const twin = this.findTwin(event, null, senders)
      if (twin !== -1) {
        this.twins.consume(twin)
        if (this.twins.countedOf(twin)) return this.duplicate(event, `the ${this.twins.grammarOf(twin)} line of the same attempt names ${this.twins.ipOf(twin) ?? ''}: counted once, there`)
      } else {
        this.addTwin(event.instance, detached(event.session ?? ''), event.grammar as 'F1' | 'F2', event.time, null, senders, false)
      }
      return null
    }
    if (!event.counted || event.ip === null) return null
    const ip = event.ip
    if (event.grammar === 'F2' && event.errorCode !== 4) this.addAccount(event.instance, detached(accountOf(event.user)), ip, event.time)
    if (twinShape) {
      const twin = this.findTwin(event, ip, [])
      if (twin !== -1) {
        this.twins.consume(twin)
        if (this.twins.countedOf(twin)) {
          const session = event.session === null ? '' : ` of session ${event.session}`
          return this.duplicate(event, `same attempt as the ${this.twins.grammarOf(twin)} line${session}: counted once`)
        }
        event.reason = `${event.reason} (its ${this.twins.grammarOf(twin)} twin was ambiguous alone)`
      } else {
        this.addTwin(event.instance, detached(event.session ?? ''), event.grammar as 'F1' | 'F2', event.time, ip, undefined, true)
      }
    }
    if (event.grammar === 'F2' && event.errorCode === 4) return this.rateLimited(event, ip)
    return null
  }

  /** The second line of one attempt: it does not count again. */
  private duplicate(event: SourcedEvent, why: string): AttemptVerdict {
    event.counted = false
    event.reason = why
    return {action: 'duplicate', why}
  }

  /** An (error: 4) counts only as part of the address's own flood of the account. */
  private rateLimited(event: SourcedEvent, ip: string): AttemptVerdict | null {
    const recent = (this.accounts.get(`${event.instance}\u0000${accountOf(event.user)}`)?.list ?? []).filter(
      (a) => a.time <= event.time + DUPLICATE_WINDOW_MS && a.time >= event.time - RATE_LIMIT_WINDOW_MS,
    )
    const others = [...new Set(recent.filter((a) => a.ip !== ip).map((a) => a.ip))]
    if (recent.length > 0 && others.length === 0) return null
    event.counted = false
    const why =
      others.length > 0
        ? `refused by login_rate_limit (error 4) after failures on this account from ${others.slice(0, 3).join(', ')}${others.length > 3 ? ` and ${others.length - 3} more` : ''}: not counted against ${ip}`
        : `refused by login_rate_limit (error 4) with no failure of ${ip} on this account before it: someone else locked it, not counted`
    event.reason = why
    return {action: 'ignored', why}
  }

  /**
   * What to keep for the next run: the unmatched lines of the last seconds
   * (the twin of an older one was in this run's read of the other log, which
   * cron reads a moment later at most), and the account failures of the last
   * rate-limit window. In a fixed order, so that a run read again after a
   * crash saves the same document.
   */
  save(): LedgerData {
    const twins: TwinRecord[] = []
    for (const r of this.twins.records()) if (r.time >= (this.newest.get(r.instance) ?? 0) - TWIN_KEEP_MS) twins.push(r)
    const accounts: LedgerData['accounts'] = []
    for (const {instance, account, list} of this.accounts.values()) {
      const horizon = (this.newest.get(instance) ?? 0) - RATE_LIMIT_WINDOW_MS
      const recent = list.filter((a) => a.time >= horizon)
      // One failure alone cannot make the next run count a refusal wrongly (that needs the refused
      // address's own failure and nobody else's): only accounts with several are kept.
      if (recent.length >= 2) for (const a of recent) accounts.push({instance, account, ip: a.ip, time: a.time})
    }
    const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
    twins.sort((a, b) => a.time - b.time || order(a.instance, b.instance) || order(a.session, b.session) || order(a.grammar, b.grammar) || order(a.ip ?? '', b.ip ?? ''))
    accounts.sort((a, b) => a.time - b.time || order(a.instance, b.instance) || order(a.account, b.account) || order(a.ip, b.ip))
    return {twins: twins.slice(-MAX_KEPT), accounts: accounts.slice(-MAX_KEPT)}
  }
}
