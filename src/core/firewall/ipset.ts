/**
 * ipset backend: one `hash:net` set per instance and family
 * (`<prefix>-<instance>-4`, `-6`), matched by one iptables rule per instance
 * and hook chain. A packet is checked against a hash, not walked through a
 * list, so 100,000 addresses cost what 10 do.
 *
 * A set is refilled by `ipset restore` into a temporary set that then
 * `swap`s with the live one: the kernel exchanges them at once, so no packet
 * ever meets a half-filled set. Sets are sized from their content (never the
 * 65,536 default ceiling). The iptables rules are kept by the same
 * one-transaction sync as the iptables backend.
 */
import {FirewallError} from '../errors.js'
import {firstErrorLine, toolHint, type Runner} from './runner.js'
import {hookRules, IptablesSync, TOOLS, verdict, type Fam, type IptablesWanted} from './iptables.js'
import {
  emptyResult,
  hostOrCidr,
  merge,
  type ApplyResult,
  type BackendOptions,
  type DesiredState,
  type FirewallBackend,
} from './backend.js'

interface LiveSet {
  family: 'inet' | 'inet6'
  type: string
  maxelem: number
  members: Set<string>
}

/** The smallest power of two ≥ n. */
function pow2(n: number): number {
  let p = 1
  while (p < n) p *= 2
  return p
}

/** Room for twice the members, never below ipset's default of 65,536. */
export function setSize(count: number): {maxelem: number; hashsize: number} {
  return {maxelem: Math.max(65_536, pow2(count * 2)), hashsize: Math.max(1024, pow2(Math.ceil(count / 4)))}
}

export function parseIpsetSave(text: string, only?: (name: string) => boolean): Map<string, LiveSet> {
  const sets = new Map<string, LiveSet>()
  let current: LiveSet | undefined
  let currentName = ''
  let from = 0
  // indexOf and slice, not split: a 100,000-member dump is parsed in a tenth of a second.
  while (from < text.length) {
    let nl = text.indexOf('\n', from)
    if (nl === -1) nl = text.length
    if (text.startsWith('add ', from)) {
      const sp = text.indexOf(' ', from + 4)
      if (sp !== -1 && sp < nl) {
        if (text.slice(from + 4, sp) !== currentName) {
          currentName = text.slice(from + 4, sp)
          current = sets.get(currentName)
        }
        const end = text.indexOf(' ', sp + 1)
        current?.members.add(text.slice(sp + 1, end === -1 || end > nl ? nl : end))
      }
    } else if (text.startsWith('create ', from)) {
      const parts = text.slice(from, nl).split(' ')
      const name = parts[1] ?? ''
      if (only === undefined || only(name)) {
        const opt = (key: string) => {
          const i = parts.indexOf(key)
          return i === -1 ? undefined : parts[i + 1]
        }
        sets.set(name, {
          type: parts[2] ?? '',
          family: opt('family') === 'inet6' ? 'inet6' : 'inet',
          maxelem: Number(opt('maxelem') ?? 65_536),
          members: new Set(),
        })
      }
    }
    from = nl + 1
  }
  return sets
}

export class IpsetBackend implements FirewallBackend {
  readonly name = 'ipset'
  private readonly sync: IptablesSync
  private readonly runner: Runner

  constructor(private readonly options: BackendOptions) {
    this.runner = options.runner
    this.sync = new IptablesSync(options.runner, `${options.prefix}-`)
  }

  setName(instance: string, fam: Fam): string {
    return `${this.options.prefix}-${instance}-${fam}`
  }

  private isOurSet(name: string): boolean {
    return name.startsWith(`${this.options.prefix}-`)
  }

  /** Wanted sets: name → members as `ipset save` writes them (hosts without /32). */
  private wantedSets(desired: DesiredState): Map<string, {family: 'inet' | 'inet6'; members: string[]}> {
    const out = new Map<string, {family: 'inet' | 'inet6'; members: string[]}>()
    for (const inst of desired.instances) {
      out.set(this.setName(inst.name, 4), {family: 'inet', members: inst.v4.map(hostOrCidr)})
      out.set(this.setName(inst.name, 6), {family: 'inet6', members: inst.v6.map(hostOrCidr)})
    }
    return out
  }

  private wantedRules(desired: DesiredState, fam: Fam): IptablesWanted {
    const hooks: string[] = []
    for (const inst of desired.instances) {
      const target = `-m set --match-set ${this.setName(inst.name, fam)} src ${verdict(this.options.action, fam)}`
      for (const hook of this.options.chains) hooks.push(...hookRules(hook, inst.ports, target))
    }
    return {chains: new Map(), hooks}
  }

  private restoreText(name: string, family: string, members: string[], exists = false): string {
    const {maxelem, hashsize} = setSize(members.length)
    const tmp = `${name}t`
    const spec = `hash:net family ${family} hashsize ${hashsize} maxelem ${maxelem}`
    const lines = [`create ${tmp} ${spec} -exist`, `flush ${tmp}`]
    for (const m of members) lines.push(`add ${tmp} ${m}`)
    // A live set is swapped as it is (its size may differ); a missing one is created first.
    if (!exists) lines.push(`create ${name} ${spec}`)
    lines.push(`swap ${tmp} ${name}`, `destroy ${tmp}`)
    return `${lines.join('\n')}\n`
  }

  render(desired: DesiredState): string {
    const out: string[] = ['# ipset restore (each set filled aside, then swapped in)']
    for (const [name, set] of this.wantedSets(desired)) out.push(this.restoreText(name, set.family, set.members).trimEnd())
    for (const fam of [4, 6] as const) {
      out.push(`# ${fam === 4 ? 'iptables' : 'ip6tables'} (${TOOLS[fam].label}), applied with ${TOOLS[fam].restore} --noflush`)
      out.push('*filter', ...this.wantedRules(desired, fam).hooks, 'COMMIT')
    }
    return `${out.join('\n')}\n`
  }

  private async ipset(args: string[], input?: string): Promise<string> {
    const r = await this.runner.run('ipset', args, input === undefined ? {} : {input})
    if (r.exitCode !== 0) {
      throw new FirewallError(`ipset ${args[0] ?? ''} failed (exit ${r.exitCode}): ${firstErrorLine(r.stderr)}; the live sets are unchanged${toolHint(r.stderr)}`)
    }
    return r.stdout
  }

  private async liveSets(): Promise<Map<string, LiveSet>> {
    const text = await this.ipset(['save'])
    const odd = text.split('\n').find((l) => l !== '' && !l.startsWith('create ') && !l.startsWith('add '))
    if (odd !== undefined) {
      throw new FirewallError('ipset save printed lines that are neither "create" nor "add": its output cannot be trusted; nothing was changed')
    }
    return parseIpsetSave(text, (name) => this.isOurSet(name))
  }

  async apply(desired: DesiredState): Promise<ApplyResult> {
    const result = emptyResult()
    const live = await this.liveSets()
    const want = this.wantedSets(desired)
    let restore = ''
    for (const [name, set] of want) {
      const have = live.get(name)
      const {maxelem} = setSize(set.members.length)
      let why: string | null = null
      if (have === undefined) why = `set ${name} is missing`
      else if (have.type !== 'hash:net' || have.family !== set.family) why = `set ${name} has the wrong type`
      else if (have.maxelem < maxelem && have.maxelem < set.members.length * 2) why = `set ${name} is too small`
      else {
        const add = set.members.filter((m) => !have.members.has(m)).length
        const del = have.members.size - (set.members.length - add)
        if (add > 0 || del > 0) why = `set ${name} differs (${add} to add, ${del} to remove)`
      }
      if (why === null) continue
      result.drift.push(why)
      const swappable = have !== undefined && have.type === 'hash:net' && have.family === set.family
      if (have !== undefined && !swappable) restore += `destroy ${name}\n`
      restore += this.restoreText(name, set.family, set.members, swappable)
    }
    if (restore !== '') {
      await this.ipset(['restore'], restore)
      result.changed = true
      result.applied.push(`# ipset restore\n${restore}`)
    }
    for (const fam of [4, 6] as const) {
      const r = await this.sync.sync(fam, this.wantedRules(desired, fam))
      merge(result, {
        changed: r.applied !== null,
        drift: r.drift,
        applied: r.applied === null ? [] : [`# ${TOOLS[fam].restore} --noflush -w 5\n${r.applied}`],
      })
    }
    // Sets no longer wanted go only after the rules that used them.
    const unwanted = [...live.keys()].filter((name) => !want.has(name))
    if (unwanted.length > 0) {
      const text = unwanted.map((n) => `destroy ${n}`).join('\n')
      await this.ipset(['restore'], `${text}\n`)
      result.changed = true
      result.drift.push(...unwanted.map((n) => `set ${n} is not wanted`))
      result.applied.push(`# ipset restore\n${text}\n`)
    }
    return result
  }

  async remove(): Promise<ApplyResult> {
    return this.apply({instances: []})
  }
}
