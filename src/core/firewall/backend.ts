/**
 * Firewall backends turn the desired state — per instance, its ports and the
 * networks blocked on them — into kernel rules. Every backend is idempotent
 * (nothing that changes the rules runs when the live rules already match),
 * atomic (one transaction per family and tool), self-healing (whatever
 * differs from the desired state is put back, and reported as drift), and
 * owns only objects whose names start with the configured prefix.
 */
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
}

export interface FirewallBackend {
  readonly name: BackendName
  /** The complete rule set for the desired state, as text an admin can read. */
  render(desired: DesiredState): string
  /** Makes the live rules equal the desired state. */
  apply(desired: DesiredState): Promise<ApplyResult>
  /** Removes every object this backend owns. */
  remove(): Promise<ApplyResult>
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
