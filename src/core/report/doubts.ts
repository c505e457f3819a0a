/**
 * The warnings about login lines that could not be attributed, one line per
 * log and cause, with the fix that matches the cause. Most causes can be
 * provoked by a client (a newline in a user name, a forged header), so a
 * repeat is held back: each cause of each log is told at most once per
 * `REPEAT_MS` (the lines in between are summed into the next warning), so
 * that nobody can put a line into every cron mail. Dry runs tell every time.
 */
import type {LoginEvent} from '../parser/types.js'

export type DoubtCause = 'ambiguous' | 'forged' | 'incomplete' | 'untrusted' | 'proxy' | 'proxy-disagree' | 'unprefixed' | 'syslog-text'

/** How often one cause of one log is told, at most. */
const REPEAT_MS: Record<DoubtCause, number> = {
  ambiguous: 3_600_000,
  forged: 3_600_000,
  incomplete: 3_600_000,
  untrusted: 3_600_000,
  proxy: 3_600_000,
  'proxy-disagree': 3_600_000,
  unprefixed: 86_400_000,
  'syslog-text': 86_400_000,
}

/** Per log and cause: when it was last told, and the lines held back since. */
export type WarnedState = Partial<Record<DoubtCause, {at: number; held: number}>>

export class DoubtTally {
  private readonly counts = new Map<DoubtCause, number>()
  private readonly proxies = new Set<string>()
  private readonly why = new Set<string>()

  /** Notes one event's doubt, if it has one. */
  add(event: LoginEvent): void {
    const d = event.doubt
    if (d === undefined) return
    let cause: DoubtCause = d
    if (d === 'proxy') {
      if (event.proxy !== undefined) this.proxies.add(event.proxy)
      if (event.reason.includes('disagree')) cause = 'proxy-disagree'
      else if (this.why.size < 3) this.why.add(event.reason)
    }
    this.bump(cause)
  }

  bump(cause: DoubtCause, n = 1): void {
    this.counts.set(cause, (this.counts.get(cause) ?? 0) + n)
  }

  private text(file: string, cause: DoubtCause, n: number): string {
    const lines = `${n} login line${n === 1 ? '' : 's'}`
    const proxies = [...this.proxies].join(', ')
    switch (cause) {
      case 'ambiguous':
        return `${file}: ${lines} not counted: a user name or an X-Forwarded-For/X-Real-IP header imitates Roundcube's "from ADDR (…)", so the sender cannot be told (see --verbose); without a reverse proxy, have the web server drop X-Forwarded-For and X-Real-IP; with one, list it in trustedProxies`
      case 'forged':
        return `${file}: ${lines} not counted: pieces of user names that hold a newline, written to look like other log lines (the entries themselves were counted against their real senders; see --verbose)`
      case 'incomplete':
        return `${file}: ${lines} not counted: a login entry split by a newline whose end never came (see --verbose)`
      case 'untrusted':
        return `${file}: ${lines} not counted: journal records tagged roundcube that the web server did not send (a local user's logger?); if Roundcube runs under another process, set journalTrust for this log`
      case 'proxy':
        return `${file}: ${lines} from trusted proxy ${proxies} not counted: ${[...this.why].join('; ')}; check that the proxy sets the header its trustedProxies entry names`
      case 'proxy-disagree':
        return `${file}: ${lines} from trusted proxy ${proxies} not counted: its X-Real-IP and X-Forwarded-For name different clients, so one of them is the client's own; say which header the proxy writes: trustedProxies: [{address: ${this.proxies.values().next().value ?? 'ADDR'}, header: x-real-ip}] (it sets X-Real-IP) or header: x-forwarded-for (it appends to X-Forwarded-For)`
      case 'unprefixed':
        return `${file}: this log shows no <session> prefixes (${lines} read), so a user name with a newline can forge whole lines here that cannot be told from Roundcube's; only errors-log lines are counted; set $config['log_session_id'] = 8 (Roundcube's default) in Roundcube`
      case 'syslog-text':
        return `${file}: a text syslog file cannot tell Roundcube's records from those of any local user (logger -t roundcube …), who could get any address blocked; prefer Roundcube's file log driver, or the journal with format journal-json`
    }
  }

  /**
   * The warnings of one log for this run. With `state` (a cron run), a cause
   * told less than its repeat time ago is held back and summed; the state is
   * updated in place. Without it, everything is told.
   */
  warnings(file: string, now: number, state?: WarnedState): string[] {
    const out: string[] = []
    for (const [cause, n] of this.counts) {
      if (n === 0) continue
      if (state === undefined) {
        out.push(this.text(file, cause, n))
        continue
      }
      const prev = state[cause]
      if (prev !== undefined && now - prev.at < REPEAT_MS[cause]) {
        prev.held += n
        continue
      }
      const total = n + (prev?.held ?? 0)
      const since = prev === undefined || prev.held === 0 ? '' : ` (${prev.held} of them held back since the warning of ${new Date(prev.at).toISOString()})`
      out.push(this.text(file, cause, total) + since)
      state[cause] = {at: now, held: 0}
    }
    return out
  }
}
