/**
 * iptables / ip6tables backend: one chain `<prefix>-<instance>` per instance
 * and family holding one DROP rule per blocked address, jumped to from INPUT
 * for the instance's tcp ports only.
 *
 * Each run reads `iptables-save -t filter`, computes the difference to the
 * desired state and, only when there is one, applies it as a single
 * `iptables-restore --noflush -w` transaction: the kernel takes all of it or
 * none of it. Declaring a chain in that file (`:chain - [0:0]`) creates or
 * empties it, so the chain is refilled in the same transaction.
 */
import {FirewallError} from '../errors.js'
import {firstErrorLine, type Runner} from './runner.js'
import type {ApplyResult, BackendOptions, DesiredState, FirewallBackend} from './backend.js'

type Fam = 4 | 6

const TOOLS: Record<Fam, {save: string; restore: string; label: string; host: number}> = {
  4: {save: 'iptables-save', restore: 'iptables-restore', label: 'IPv4', host: 32},
  6: {save: 'ip6tables-save', restore: 'ip6tables-restore', label: 'IPv6', host: 128},
}

/** multiport takes at most 15 ports per rule. */
const MULTIPORT_MAX = 15

interface LiveTable {
  /** Chain names declared in the filter table. */
  chains: Set<string>
  /** Rule lines (`-A CHAIN ...`) per chain, in order. */
  rules: Map<string, string[]>
}

export function parseSave(text: string): LiveTable {
  const chains = new Set<string>()
  const rules = new Map<string, string[]>()
  let inFilter = false
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      inFilter = line === '*filter'
      continue
    }
    if (!inFilter) continue
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0] ?? ''
      chains.add(name)
    } else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1] ?? ''
      const list = rules.get(chain) ?? []
      list.push(line)
      rules.set(chain, list)
    }
  }
  return {chains, rules}
}

export class IptablesBackend implements FirewallBackend {
  readonly name = 'iptables'
  private readonly prefix: string
  private readonly runner: Runner

  constructor(options: BackendOptions) {
    this.prefix = `${options.prefix}-`
    this.runner = options.runner
  }

  chainName(instance: string): string {
    return `${this.prefix}${instance}`
  }

  private jumpRules(chain: string, ports: number[]): string[] {
    const out: string[] = []
    for (let i = 0; i < ports.length; i += MULTIPORT_MAX) {
      const group = ports.slice(i, i + MULTIPORT_MAX).join(',')
      out.push(`-A INPUT -p tcp -m multiport --dports ${group} -j ${chain}`)
    }
    return out
  }

  /** Desired chains (name → rule lines) and jump lines, in iptables-save's own spelling. */
  private desiredFor(desired: DesiredState, fam: Fam): {chains: Map<string, string[]>; jumps: string[]} {
    const chains = new Map<string, string[]>()
    const jumps: string[] = []
    for (const inst of desired.instances) {
      const chain = this.chainName(inst.name)
      const addrs = fam === 4 ? inst.v4 : inst.v6
      chains.set(chain, addrs.map((ip) => `-A ${chain} -s ${ip}/${TOOLS[fam].host} -j DROP`))
      jumps.push(...this.jumpRules(chain, [...inst.ports]))
    }
    return {chains, jumps}
  }

  render(desired: DesiredState): string {
    const out: string[] = []
    for (const fam of [4, 6] as const) {
      const {chains, jumps} = this.desiredFor(desired, fam)
      out.push(`# ${fam === 4 ? 'iptables' : 'ip6tables'} (${TOOLS[fam].label}), applied with ${TOOLS[fam].restore} --noflush`)
      out.push('*filter')
      for (const name of chains.keys()) out.push(`:${name} - [0:0]`)
      for (const lines of chains.values()) out.push(...lines)
      out.push(...jumps)
      out.push('COMMIT')
    }
    return `${out.join('\n')}\n`
  }

  private isOurs(chain: string): boolean {
    return chain.startsWith(this.prefix)
  }

  private async readLive(fam: Fam): Promise<LiveTable> {
    const tool = TOOLS[fam].save
    const r = await this.runner.run(tool, ['-t', 'filter'])
    if (r.exitCode !== 0) {
      throw new FirewallError(`${tool} failed (exit ${r.exitCode}): ${firstErrorLine(r.stderr)}${permissionHint(r.stderr)}`)
    }
    return parseSave(r.stdout)
  }

  private async restore(fam: Fam, lines: string[]): Promise<string> {
    const text = `*filter\n${lines.join('\n')}\nCOMMIT\n`
    const tool = TOOLS[fam].restore
    const r = await this.runner.run(tool, ['--noflush', '-w', '5'], {input: text})
    if (r.exitCode !== 0) {
      throw new FirewallError(
        `${tool} refused the rule set (exit ${r.exitCode}): ${firstErrorLine(r.stderr)}; no rule was changed${permissionHint(r.stderr)}`,
      )
    }
    return text
  }

  /** Jump rules in built-in chains that lead to one of our chains. */
  private ourJumps(live: LiveTable): string[] {
    const out: string[] = []
    for (const [chain, rules] of live.rules) {
      if (this.isOurs(chain)) continue
      for (const rule of rules) {
        const target = / -j (\S+)$/.exec(rule)?.[1]
        if (target !== undefined && this.isOurs(target)) out.push(rule)
      }
    }
    return out
  }

  private async applyFamily(desired: DesiredState, fam: Fam): Promise<{drift: string[]; applied: string | null}> {
    const live = await this.readLive(fam)
    const want = this.desiredFor(desired, fam)
    const drift: string[] = []
    const lines: string[] = []
    const label = TOOLS[fam].label

    for (const [chain, rules] of want.chains) {
      const have = live.rules.get(chain) ?? []
      if (!live.chains.has(chain)) {
        drift.push(`${label}: chain ${chain} is missing`)
      } else if (have.join('\n') !== rules.join('\n')) {
        const add = rules.filter((r) => !have.includes(r)).length
        const del = have.filter((r) => !rules.includes(r)).length
        drift.push(`${label}: chain ${chain} differs (${add} rule(s) to add, ${del} to remove)`)
      } else {
        continue
      }
      lines.push(`:${chain} - [0:0]`, ...rules)
    }

    // Jumps: exactly one of each desired jump, none other to our chains.
    const haveJumps = this.ourJumps(live)
    const remaining = [...haveJumps]
    const toInsert: string[] = []
    for (const jump of want.jumps) {
      const i = remaining.indexOf(jump)
      if (i === -1) toInsert.push(jump)
      else remaining.splice(i, 1)
    }
    for (const extra of remaining) {
      drift.push(`${label}: unexpected jump "${extra}"`)
      lines.push(extra.replace(/^-A /, '-D '))
    }
    for (const jump of toInsert) {
      drift.push(`${label}: jump "${jump}" is missing`)
      lines.push(jump.replace(/^-A (\S+) /, '-I $1 1 '))
    }

    // Chains of ours that are no longer wanted (an instance was removed).
    for (const chain of live.chains) {
      if (this.isOurs(chain) && !want.chains.has(chain)) {
        drift.push(`${label}: chain ${chain} is no longer configured`)
        lines.push(`-F ${chain}`, `-X ${chain}`)
      }
    }

    if (lines.length === 0) return {drift, applied: null}
    return {drift, applied: await this.restore(fam, lines)}
  }

  async apply(desired: DesiredState): Promise<ApplyResult> {
    const result: ApplyResult = {changed: false, drift: [], applied: []}
    for (const fam of [4, 6] as const) {
      const r = await this.applyFamily(desired, fam)
      result.drift.push(...r.drift)
      if (r.applied !== null) {
        result.changed = true
        result.applied.push(`# ${TOOLS[fam].restore} --noflush -w 5\n${r.applied}`)
      }
    }
    return result
  }

  async remove(): Promise<ApplyResult> {
    return this.apply({instances: []})
  }
}

function permissionHint(stderr: string): string {
  return /Permission denied|you must be root|Operation not permitted/i.test(stderr)
    ? ' (run rcguard as root, or use --dry-run)'
    : ''
}
