/**
 * iptables / ip6tables: reading and changing the filter table in one
 * transaction, and the `iptables` backend built on it.
 *
 * The backend keeps one chain `<prefix>-<instance>` per instance and family
 * holding one rule per blocked network, jumped to from each configured hook
 * chain (INPUT; DOCKER-USER or FORWARD for Roundcube in containers) for the
 * instance's tcp ports only.
 *
 * Each run reads `iptables-save -t filter`, computes the difference to the
 * desired state and, only when there is one, applies it as a single
 * `iptables-restore --noflush -w` transaction: the kernel takes all of it or
 * none of it. Declaring a chain in that file (`:chain - [0:0]`) creates or
 * empties it, so the chain is refilled in the same transaction.
 */
import {FirewallError} from '../errors.js'
import {firstErrorLine, toolHint, type Runner} from './runner.js'
import {
  emptyResult,
  merge,
  type Action,
  type ApplyResult,
  type BackendOptions,
  type DesiredState,
  type FirewallBackend,
  type HookChain,
  type InstanceRules,
} from './backend.js'
import {iptablesShadows, ownHooks, shadowFields} from './shadow.js'

export type Fam = 4 | 6

export const TOOLS: Record<Fam, {save: string; restore: string; label: string; reject: string}> = {
  4: {save: 'iptables-save', restore: 'iptables-restore', label: 'IPv4', reject: 'icmp-port-unreachable'},
  6: {save: 'ip6tables-save', restore: 'ip6tables-restore', label: 'IPv6', reject: 'icmp6-port-unreachable'},
}

/** multiport takes at most 15 ports per rule. */
const MULTIPORT_MAX = 15

export interface LiveTable {
  /** Chain names declared in the filter table. */
  chains: Set<string>
  /** Rule lines (`-A CHAIN ...`) per chain, in order. */
  rules: Map<string, string[]>
  /** Built-in chains' policies (for the shadowing check). */
  policies: Map<string, string>
}

export function parseSave(text: string): LiveTable {
  const chains = new Set<string>()
  const rules = new Map<string, string[]>()
  const policies = new Map<string, string>()
  let inFilter = false
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      inFilter = line === '*filter'
      continue
    }
    if (!inFilter) continue
    if (line.startsWith(':')) {
      const [name = '', policy = '-'] = line.slice(1).split(' ')
      chains.add(name)
      if (policy !== '-') policies.set(name, policy)
    } else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1] ?? ''
      const list = rules.get(chain) ?? []
      list.push(line)
      rules.set(chain, list)
    }
  }
  return {chains, rules, policies}
}

/** The verdict part of a rule, in iptables-save's spelling. */
export function verdict(action: Action, fam: Fam): string {
  return action === 'DROP' ? '-j DROP' : `-j REJECT --reject-with ${TOOLS[fam].reject}`
}

/**
 * Rules in one hook chain that send an instance's traffic to `target`
 * (`-j chain`, or a set match with a verdict). INPUT matches the tcp ports
 * the packet is addressed to; the forwarding chains match the port the
 * client connected to before Docker's DNAT (conntrack's original port).
 */
export function hookRules(hook: HookChain, ports: InstanceRules['ports'], target: string): string[] {
  if (ports === 'all') return [`-A ${hook} ${target}`]
  if (hook === 'INPUT') {
    const out: string[] = []
    for (let i = 0; i < ports.length; i += MULTIPORT_MAX) {
      out.push(`-A ${hook} -p tcp -m multiport --dports ${ports.slice(i, i + MULTIPORT_MAX).join(',')} ${target}`)
    }
    return out
  }
  return ports.map((p) => `-A ${hook} -p tcp -m conntrack --ctorigdstport ${p} --ctdir ORIGINAL ${target}`)
}

export interface IptablesWanted {
  /** Chains of ours with their rule lines. */
  chains: Map<string, string[]>
  /** Our rules in chains that are not ours (the hook chains). */
  hooks: string[]
}

function permissionHint(stderr: string): string {
  return /Permission denied|you must be root|Operation not permitted/i.test(stderr) ? ' (run rcguard as root, or use --dry-run)' : ''
}

/**
 * Brings the filter table's objects named with `prefix` to the wanted state
 * in one iptables-restore transaction per family.
 */
export class IptablesSync {
  constructor(
    private readonly runner: Runner,
    readonly prefix: string,
  ) {}

  isOurs(name: string): boolean {
    return name.startsWith(this.prefix)
  }

  /** A rule in a chain that is not ours but belongs to us: it jumps to our chain or matches our set. */
  refersToUs(rule: string): boolean {
    const target = / -j (\S+)/.exec(rule)?.[1]
    const set = / --match-set (\S+) /.exec(rule)?.[1]
    return (target !== undefined && this.isOurs(target)) || (set !== undefined && this.isOurs(set))
  }

  async read(fam: Fam): Promise<LiveTable> {
    const tool = TOOLS[fam].save
    const r = await this.runner.run(tool, ['-t', 'filter'])
    if (r.exitCode !== 0) {
      throw new FirewallError(`${tool} failed (exit ${r.exitCode}): ${firstErrorLine(r.stderr)}${permissionHint(r.stderr)}${toolHint(r.stderr)}`)
    }
    if (!/^\*filter$/m.test(r.stdout) || !/^COMMIT$/m.test(r.stdout)) {
      throw new FirewallError(`${tool} printed no complete filter table (no "*filter" ... "COMMIT"): its output cannot be trusted; nothing was changed`)
    }
    return parseSave(r.stdout)
  }

  private async restore(fam: Fam, lines: string[]): Promise<string> {
    const text = `*filter\n${lines.join('\n')}\nCOMMIT\n`
    const tool = TOOLS[fam].restore
    const r = await this.runner.run(tool, ['--noflush', '-w', '5'], {input: text})
    if (r.exitCode !== 0) {
      const missing = /Chain '?(DOCKER-USER|FORWARD)'? does not exist|Couldn't load target `DOCKER-USER'/.exec(r.stderr)
      const hint = missing === null ? '' : ` (is Docker running? chain ${missing[1] ?? ''} is created by Docker)`
      throw new FirewallError(
        `${tool} refused the rule set (exit ${r.exitCode}): ${firstErrorLine(r.stderr)}; no rule was changed${hint}${permissionHint(r.stderr)}${toolHint(r.stderr)}`,
      )
    }
    return text
  }

  /** Makes one family's filter table hold exactly the wanted chains and hook rules of ours; `live` when already read. */
  async sync(fam: Fam, want: IptablesWanted, live?: LiveTable): Promise<{drift: string[]; applied: string | null}> {
    live ??= await this.read(fam)
    const label = TOOLS[fam].label
    const drift: string[] = []
    const lines: string[] = []

    for (const [chain, rules] of want.chains) {
      const have = live.rules.get(chain) ?? []
      if (!live.chains.has(chain)) {
        drift.push(`${label}: chain ${chain} is missing`)
      } else if (have.join('\n') !== rules.join('\n')) {
        const haveSet = new Set(have)
        const wantSet = new Set(rules)
        const add = rules.filter((r) => !haveSet.has(r)).length
        const del = have.filter((r) => !wantSet.has(r)).length
        drift.push(`${label}: chain ${chain} differs (${add} rule(s) to add, ${del} to remove)`)
      } else {
        continue
      }
      lines.push(`:${chain} - [0:0]`, ...rules)
    }

    // Our rules in other chains: exactly one of each wanted rule, none other.
    const remaining: string[] = []
    for (const [chain, rules] of live.rules) {
      if (!this.isOurs(chain)) remaining.push(...rules.filter((r) => this.refersToUs(r)))
    }
    const toInsert: string[] = []
    for (const rule of want.hooks) {
      const i = remaining.indexOf(rule)
      if (i === -1) toInsert.push(rule)
      else remaining.splice(i, 1)
    }
    for (const extra of remaining) {
      drift.push(`${label}: unexpected rule "${extra}"`)
      lines.push(extra.replace(/^-A /, '-D '))
    }
    for (const rule of toInsert) {
      const chain = rule.split(' ')[1] ?? ''
      // Docker makes DOCKER-USER for IPv6 only when its ip6tables support is on: no chain, no IPv6 containers.
      if (!live.chains.has(chain) && chain === 'DOCKER-USER' && fam === 6) continue
      if (!live.chains.has(chain)) {
        throw new FirewallError(
          `${label}: chain ${chain} does not exist${chain === 'DOCKER-USER' ? ': is Docker running? Docker creates it' : ''}; nothing was changed`,
        )
      }
      drift.push(`${label}: rule "${rule}" is missing`)
      lines.push(rule.replace(/^-A (\S+) /, '-I $1 1 '))
    }

    // Chains of ours that are no longer wanted (an instance was removed, the backend changed).
    for (const chain of live.chains) {
      if (this.isOurs(chain) && !want.chains.has(chain)) {
        drift.push(`${label}: chain ${chain} is not wanted`)
        lines.push(`-F ${chain}`, `-X ${chain}`)
      }
    }

    if (lines.length === 0) return {drift, applied: null}
    return {drift, applied: await this.restore(fam, lines)}
  }
}

export class IptablesBackend implements FirewallBackend {
  readonly name = 'iptables'
  private readonly sync: IptablesSync

  constructor(private readonly options: BackendOptions) {
    this.sync = new IptablesSync(options.runner, `${options.prefix}-`)
  }

  chainName(instance: string): string {
    return `${this.options.prefix}-${instance}`
  }

  /** Desired chains and hook rules, in iptables-save's own spelling. */
  wanted(desired: DesiredState, fam: Fam): IptablesWanted {
    const chains = new Map<string, string[]>()
    const hooks: string[] = []
    for (const inst of desired.instances) {
      const chain = this.chainName(inst.name)
      const nets = fam === 4 ? inst.v4 : inst.v6
      chains.set(chain, nets.map((net) => `-A ${chain} -s ${net} ${verdict(this.options.action, fam)}`))
      for (const hook of this.options.chains) hooks.push(...hookRules(hook, inst.ports, `-j ${chain}`))
    }
    return {chains, hooks}
  }

  render(desired: DesiredState): string {
    const out: string[] = []
    for (const fam of [4, 6] as const) {
      const {chains, hooks} = this.wanted(desired, fam)
      out.push(`# ${fam === 4 ? 'iptables' : 'ip6tables'} (${TOOLS[fam].label}), applied with ${TOOLS[fam].restore} --noflush`)
      out.push('*filter')
      for (const name of chains.keys()) out.push(`:${name} - [0:0]`)
      for (const lines of chains.values()) out.push(...lines)
      out.push(...hooks)
      out.push('COMMIT')
    }
    return `${out.join('\n')}\n`
  }

  async apply(desired: DesiredState): Promise<ApplyResult> {
    const result = emptyResult()
    for (const fam of [4, 6] as const) {
      const live = await this.sync.read(fam)
      const r = await this.sync.sync(fam, this.wanted(desired, fam), live)
      merge(result, {
        changed: r.applied !== null,
        drift: r.drift,
        applied: r.applied === null ? [] : [`# ${TOOLS[fam].restore} --noflush -w 5\n${r.applied}`],
      })
      const hooks = ownHooks(desired, this.options.chains, (hook, inst) => hookRules(hook, inst.ports, `-j ${this.chainName(inst.name)}`))
      merge(result, shadowFields(iptablesShadows(live, fam, hooks, (rule) => this.sync.refersToUs(rule))))
    }
    return result
  }

  async remove(): Promise<ApplyResult> {
    return this.apply({instances: []})
  }
}
