/**
 * Firewall backends turn the desired state — per instance, its ports and the
 * networks blocked on them — into kernel rules. Every backend is idempotent
 * (nothing that changes the rules runs when the live rules already match),
 * atomic (one transaction per family and tool), self-healing (whatever
 * differs from the desired state is put back, and reported as drift), and
 * touches only objects it can prove it made (see ownership below): a
 * same-named object of anyone else is refused or left alone, never changed.
 */
import {FirewallError} from '../errors.js'
import type {CheckCache} from './generation.js'
import type {Runner} from './runner.js'

export interface InstanceRules {
  name: string
  /** tcp ports to close, or 'all' for every port and protocol. */
  ports: number[] | 'all'
  /** Blocked IPv4 networks, canonical CIDR (`192.0.2.7/32`), sorted. */
  v4: string[]
  /** Blocked IPv6 networks, canonical CIDR (`2001:db8::/64`), sorted. */
  v6: string[]
}

export interface DesiredState {
  instances: InstanceRules[]
}

export interface ApplyResult {
  /** Whether any command changed the live rules. */
  changed: boolean
  /** What differed from the desired state before the change, one line each. */
  drift: string[]
  /** The exact rule text applied, per tool and family, for --verbose. */
  applied: string[]
  /** How the live state was checked, when that is worth a line in --verbose. */
  notes?: string[]
  /** What keeps the rules from working though they are as wanted (a rule of another shadowing them): told on every run. */
  warnings?: string[]
  /** Objects with rcguard's names that are not rcguard's, left as they are: one line each, naming the object and why. */
  kept?: string[]
  /**
   * Why the rules were set up rather than corrected (set by the run, not the
   * backend): the database's first run, the first after rcguard flush, the
   * first with enabled true again. Absent: what differed was drift.
   */
  cause?: 'first' | 'after-flush' | 're-enabled'
}

/**
 * How rcguard proves an object is its own. Every object it makes carries
 * its mark: the nft table the comment MARK, each iptables chain MARK as the
 * comment of its first rule and each hook rule MARK as its comment, each
 * ipset set an initval derived from the machine's id (see ipset.ts).
 */
export const MARK = 'managed by rcguard'

/**
 * What a backend may take as its own besides marked objects. Earlier
 * releases of rcguard made the same objects without a mark: while the database records that
 * rcguard applied this backend and prefix and no run has marked them yet
 * (StoreData.firewall.marked), an unmarked object of exactly the shape
 * rcguard made is adopted (and marked by the run that changes it). Anything
 * else unmarked is someone else's.
 */
export interface Ownership {
  adopt: boolean
}

export const NO_ADOPTION: Ownership = {adopt: false}

/**
 * A firewall object rcguard needs is someone else's (nothing was changed),
 * or someone else's rule holds on to one of rcguard's that should go: a
 * retry cannot help until the admin acts, and the message says how.
 */
export class ForeignObjectError extends FirewallError {
  constructor(message: string) {
    super(message)
    this.name = 'ForeignObjectError'
  }
}

/** A firewall failure after the database was saved: a retry is promised only when it can help. */
export function afterSave(err: FirewallError): FirewallError {
  if (err instanceof ForeignObjectError) return new ForeignObjectError(`${err.message}; the database was saved`)
  return new FirewallError(`${err.message}; the database was saved and the next "rcguard hacks" run retries`, err.detail)
}

export interface FirewallBackend {
  readonly name: BackendName
  /** The complete rule set for the desired state, as text an admin can read. */
  render(desired: DesiredState): string
  /** Makes the live rules equal the desired state; ForeignObjectError when a name it needs is someone else's. */
  apply(desired: DesiredState, ownership?: Ownership): Promise<ApplyResult>
  /** Removes every object this backend owns; same-named objects of others are left alone and named in `kept`. */
  remove(ownership?: Ownership): Promise<ApplyResult>
  /**
   * Reads the live rules and changes nothing (rcguard doctor): what differs
   * from the desired state's chains, hooks and tables (set members are left
   * to hacks), and the warnings of rules of others that let packets past
   * rcguard's (shadow.ts), as apply would give them.
   */
  inspect?(desired: DesiredState, ownership?: Ownership): Promise<Inspection>
}

export interface Inspection {
  drift: string[]
  warnings: string[]
}

export type BackendName = 'iptables' | 'ipset' | 'nftables' | 'none'
export type Action = 'DROP' | 'REJECT'
/** Where blocked traffic is caught: INPUT for a Roundcube on the host, DOCKER-USER or FORWARD for one in containers. */
export type HookChain = 'INPUT' | 'FORWARD' | 'DOCKER-USER'

export interface BackendOptions {
  prefix: string
  runner: Runner
  action: Action
  chains: HookChain[]
  /** Where a backend may remember that the live rules were seen as wanted (nftables; see generation.ts). */
  checkCache?: CheckCache
}

export function emptyResult(): ApplyResult {
  return {changed: false, drift: [], applied: []}
}

export function merge(into: ApplyResult, more: ApplyResult): ApplyResult {
  into.changed ||= more.changed
  into.drift.push(...more.drift)
  into.applied.push(...more.applied)
  if (more.notes !== undefined) into.notes = [...(into.notes ?? []), ...more.notes]
  if (more.warnings !== undefined) into.warnings = [...(into.warnings ?? []), ...more.warnings]
  // flush looks at the same chains through two backends (iptables, ipset): each object is named once.
  if (more.kept !== undefined) into.kept = [...new Set([...(into.kept ?? []), ...more.kept])]
  return into
}

/** `192.0.2.7/32` → `192.0.2.7`: host networks written as plain addresses (an IPv6 /32 is a network, not a host). */
export function hostOrCidr(cidr: string): string {
  if (cidr.endsWith('/128')) return cidr.slice(0, -4)
  return cidr.endsWith('/32') && !cidr.includes(':') ? cidr.slice(0, -3) : cidr
}

export class NoFirewall implements FirewallBackend {
  readonly name = 'none'

  render(): string {
    return '# firewall.backend is none: rcguard keeps its database but changes no firewall rule\n'
  }

  async apply(): Promise<ApplyResult> {
    return emptyResult()
  }

  async remove(): Promise<ApplyResult> {
    return emptyResult()
  }
}
