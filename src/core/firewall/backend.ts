/**
 * Firewall backends turn the desired state — per instance, its ports and the
 * addresses blocked on them — into kernel rules. Every backend is
 * idempotent (nothing is executed when the live rules already match) and
 * atomic (one transaction per family), and owns only objects whose names
 * start with the configured prefix.
 */
import type {Runner} from './runner.js'

export interface InstanceRules {
  name: string
  ports: number[]
  v4: string[]
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
  /** The exact rule text applied, per family, for --verbose. */
  applied: string[]
}

export interface FirewallBackend {
  readonly name: string
  /** The complete rule set for the desired state, as text an admin can read. */
  render(desired: DesiredState): string
  /** Makes the live rules equal the desired state. */
  apply(desired: DesiredState): Promise<ApplyResult>
  /** Removes every object this backend owns. */
  remove(): Promise<ApplyResult>
}

export interface BackendOptions {
  prefix: string
  runner: Runner
}

export class NoFirewall implements FirewallBackend {
  readonly name = 'none'

  render(): string {
    return '# firewall.backend is none: rcguard keeps its database but changes no firewall rule\n'
  }

  async apply(): Promise<ApplyResult> {
    return {changed: false, drift: [], applied: []}
  }

  async remove(): Promise<ApplyResult> {
    return {changed: false, drift: [], applied: []}
  }
}
