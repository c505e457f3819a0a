/**
 * The rules beside the windows, fed with what the Decider decided for each
 * line: networkBlock (a swarm of one network blocks the network) and
 * accountAlert (an account many addresses fail on is reported, and with
 * `block` the addresses that failed on it twice are blocked). Both see only
 * a new attempt of an address that may be blocked (what the Decider
 * counted), as the entry it counted against; an IPv6 one as its /64 at least,
 * so one host is one address however many it takes. Their blocks go through
 * Decider.blockEntry, so the never-block rules and escalation are the
 * Decider's own.
 */
import type {Config} from '../config/config.js'
import {widenIpv6, type NetworkList} from '../net/ip.js'
import type {StoreData} from '../store/schema.js'
import {AccountWatch, type AccountAlert} from './accounts.js'
import type {Decider, Decision, SourcedEvent} from './decide.js'
import {NetworkWatch, neverBlockedIn} from './networks.js'
import {ruleName} from './windows.js'

/** What the Decider did with a failure that is a new attempt of an address that may be blocked. */
const COUNTED_ACTIONS: ReadonlySet<Decision['action']> = new Set(['counted', 'blocked', 'already-blocked'])

export class BesideRules {
  private readonly networks: NetworkWatch | null
  private readonly accounts: AccountWatch | null
  private readonly networkRule: string
  private readonly accountRule: string

  constructor(
    config: Pick<Config, 'networkBlock' | 'accountAlert'>,
    data: StoreData,
    never: NetworkList,
    private readonly decider: Decider,
  ) {
    const nb = config.networkBlock
    const aa = config.accountAlert
    this.networks = nb === undefined ? null : new NetworkWatch(data.networks ?? [], nb, neverBlockedIn(never))
    this.accounts = aa === undefined ? null : new AccountWatch(data.accounts ?? [], aa)
    this.networkRule = nb === undefined ? '' : ruleName('network', nb.minAddresses, nb.periodMinutes)
    this.accountRule = aa === undefined ? '' : ruleName('account', aa.minAddresses, aa.periodMinutes)
  }

  /**
   * One line's decision: the blocks it set off (their event a copy of the
   * line's, without its text), and the account it completed, if any.
   */
  feed(event: SourcedEvent, decision: Decision): {blocks: Decision[]; alert: AccountAlert | null} {
    const blocks: Decision[] = []
    let alert: AccountAlert | null = null
    if (event.outcome !== 'failure' || event.ip === null || !COUNTED_ACTIONS.has(decision.action)) return {blocks, alert}
    // From inside a blocked network, the failure counted against that network: it is no address of a swarm.
    if (this.networks !== null && decision.key !== undefined && decision.inside !== true) {
      const hit = this.networks.add(event.instance, decision.key, event.time)
      if (hit !== null) {
        const made = this.decider.blockEntry(hit.instance, hit.network, hit.at, this.networkRule, {...event})
        this.networks.clear(hit.instance, hit.network)
        if (made.action === 'blocked') blocks.push(made)
      }
    }
    if (this.accounts !== null) {
      const who = widenIpv6(decision.inside === true || decision.key === undefined ? event.ip : decision.key, 64)
      alert = this.accounts.add(event.instance, event.user, who, event.time)
      for (const due of this.accounts.takeBlocks()) {
        const made = this.decider.blockEntry(due.instance, due.ip, due.at, this.accountRule, {...event})
        if (made.action === 'blocked') blocks.push(made)
      }
    }
    return {blocks, alert}
  }

  /**
   * Puts what the rules keep between runs into the data (absent when empty:
   * a rule switched off forgets its records), and returns the run's warnings.
   */
  save(data: StoreData, now: number): string[] {
    const warnings = (this.networks?.refused() ?? []).map((r) => `networkBlock: ${r.network} on ${r.instance} is not blocked: ${r.why}`)
    const swarms = this.networks === null ? [] : this.networks.save(now)
    if (swarms.length > 0) data.networks = swarms
    else delete data.networks
    const kept = this.accounts === null ? [] : this.accounts.save(now)
    if (kept.length > 0) data.accounts = kept
    else delete data.accounts
    return warnings
  }
}
