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
import {iptablesShadows, ownHooks, shadowFields} from './shadow.js'

/**
 * An order-free fingerprint of a set's members: their count and two sums of
 * 32-bit hashes of their text. Equal fingerprints mean equal sets (a chance
 * difference slips through with odds of about 2^-64); it is built from the
 * dump's characters where they lie, without a string per member, which is
 * what makes a no-change check of 100,000 members cheap. Differences are then
 * counted exactly.
 */
export class Fingerprint {
  count = 0
  private a = 0
  private b = 0

  /** Adds the member text[start, end). */
  add(text: string, start: number, end: number): void {
    let h1 = 0x811c9dc5
    let h2 = 0x9747b28c
    for (let i = start; i < end; i++) {
      const c = text.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 0x01000193)
      h2 = Math.imul(h2 ^ c, 0x5bd1e995)
    }
    this.count++
    this.a = (this.a + mix(h1)) | 0
    this.b = (this.b + mix(h2)) | 0
  }

  /** Adds networks of one family in CIDR text as `ipset save` writes them: a host without its /32 (IPv4) or /128 (IPv6). */
  addNetworks(networks: string[], family: 'inet' | 'inet6'): this {
    const host = family === 'inet' ? HOST_V4 : HOST_V6
    // One flat string read in place: reading each member's characters would flatten it first (members are
    // usually built by concatenation), which costs more than hashing them.
    const text = networks.join('\n')
    let start = 0
    for (const n of networks) {
      const end = start + n.length
      this.add(text, start, endsWithAt(text, end, host) ? end - host.length : end)
      start = end + 1
    }
    return this
  }

  equals(other: Fingerprint): boolean {
    return this.count === other.count && this.a === other.a && this.b === other.b
  }
}

const HOST_V4 = [47, 51, 50] // "/32" as character codes
const HOST_V6 = [47, 49, 50, 56] // "/128"

/** Whether text[..end) ends with the character codes `suffix` (compared by code: endsWith with a position is slow here). */
function endsWithAt(text: string, end: number, suffix: number[]): boolean {
  const from = end - suffix.length
  for (let i = 0; i < suffix.length; i++) if (text.charCodeAt(from + i) !== suffix[i]) return false
  return true
}

/** Spreads every input bit over the whole hash (MurmurHash3's finaliser). */
function mix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}

interface LiveSet {
  family: 'inet' | 'inet6'
  type: string
  maxelem: number
  members: Fingerprint
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

/** Calls `each` with the set name and the bounds of every member in an `ipset save` dump. */
function eachMember(text: string, each: (name: string, start: number, end: number) => void): void {
  let prefix = '\u0000'
  let name = ''
  let from = 0
  while (from < text.length) {
    let nl = text.indexOf('\n', from)
    if (nl === -1) nl = text.length
    if (!text.startsWith(prefix, from)) {
      // The first member of a set, or a create line: the prefix is only ever a guess.
      const sp = text.startsWith('add ', from) ? text.indexOf(' ', from + 4) : -1
      if (sp === -1 || sp >= nl) {
        from = nl + 1
        continue
      }
      name = text.slice(from + 4, sp)
      prefix = `add ${name} `
    }
    const start = from + prefix.length
    const space = text.indexOf(' ', start)
    each(name, start, space === -1 || space > nl ? nl : space)
    from = nl + 1
  }
}

/**
 * Reads an `ipset save` dump: the sets `only` accepts, with a fingerprint of
 * their members. Throws when a line is neither "create" nor "add": such
 * output cannot be trusted.
 */
export function parseIpsetSave(text: string, only: (name: string) => boolean): Map<string, LiveSet> {
  const sets = new Map<string, LiveSet>()
  if (/^(?!add |create |$)/m.test(text)) {
    throw new FirewallError('ipset save printed lines that are neither "create" nor "add": its output cannot be trusted; nothing was changed')
  }
  for (const m of text.matchAll(/^create (\S+) (\S+)(.*)$/gm)) {
    const [, name = '', type = '', rest = ''] = m
    if (!only(name)) continue
    sets.set(name, {
      type,
      family: / family inet6(?: |$)/.test(rest) ? 'inet6' : 'inet',
      maxelem: Number(/ maxelem (\d+)/.exec(rest)?.[1] ?? 65_536),
      members: new Fingerprint(),
    })
  }
  let last = ''
  let current: LiveSet | undefined
  eachMember(text, (name, start, end) => {
    if (name !== last) {
      last = name
      current = sets.get(name)
    }
    current?.members.add(text, start, end)
  })
  return sets
}

/** The members of one set in an `ipset save` dump (for counting a difference exactly). */
export function membersOf(text: string, set: string): Set<string> {
  const out = new Set<string>()
  eachMember(text, (name, start, end) => {
    if (name === set) out.add(text.slice(start, end))
  })
  return out
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

  /** Wanted sets: name → family and networks (CIDR text). */
  private wantedSets(desired: DesiredState): Map<string, {family: 'inet' | 'inet6'; networks: string[]}> {
    const out = new Map<string, {family: 'inet' | 'inet6'; networks: string[]}>()
    for (const inst of desired.instances) {
      out.set(this.setName(inst.name, 4), {family: 'inet', networks: inst.v4})
      out.set(this.setName(inst.name, 6), {family: 'inet6', networks: inst.v6})
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

  private restoreText(name: string, family: string, networks: string[], exists = false): string {
    const {maxelem, hashsize} = setSize(networks.length)
    const tmp = `${name}t`
    const spec = `hash:net family ${family} hashsize ${hashsize} maxelem ${maxelem}`
    const lines = [`create ${tmp} ${spec} -exist`, `flush ${tmp}`]
    for (const n of networks) lines.push(`add ${tmp} ${hostOrCidr(n)}`)
    // A live set is swapped as it is (its size may differ); a missing one is created first.
    if (!exists) lines.push(`create ${name} ${spec}`)
    lines.push(`swap ${tmp} ${name}`, `destroy ${tmp}`)
    return `${lines.join('\n')}\n`
  }

  render(desired: DesiredState): string {
    const out: string[] = ['# ipset restore (each set filled aside, then swapped in)']
    for (const [name, set] of this.wantedSets(desired)) out.push(this.restoreText(name, set.family, set.networks).trimEnd())
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

  async apply(desired: DesiredState): Promise<ApplyResult> {
    const result = emptyResult()
    const want = this.wantedSets(desired)
    // The three reads at once: the kernel's dumps take most of a no-change run. While they run,
    // the wanted sets' fingerprints are computed here.
    const reads = Promise.all([this.ipset(['save']), this.sync.read(4), this.sync.read(6)])
    reads.catch(() => undefined)
    const fingerprints = new Map([...want].map(([name, set]) => [name, new Fingerprint().addNetworks(set.networks, set.family)]))
    const [saved, live4, live6] = await reads
    const live = parseIpsetSave(saved, (name) => this.isOurSet(name))
    let restore = ''
    for (const [name, set] of want) {
      const have = live.get(name)
      const {maxelem} = setSize(set.networks.length)
      let why: string | null = null
      if (have === undefined) why = `set ${name} is missing`
      else if (have.type !== 'hash:net' || have.family !== set.family) why = `set ${name} has the wrong type`
      else if (have.maxelem < maxelem && have.maxelem < set.networks.length * 2) why = `set ${name} is too small`
      else if (!have.members.equals(fingerprints.get(name) ?? new Fingerprint())) {
        const members = membersOf(saved, name)
        const add = set.networks.filter((n) => !members.has(hostOrCidr(n))).length
        why = `set ${name} differs (${add} to add, ${members.size - (set.networks.length - add)} to remove)`
      }
      if (why === null) continue
      result.drift.push(why)
      const swappable = have !== undefined && have.type === 'hash:net' && have.family === set.family
      if (have !== undefined && !swappable) restore += `destroy ${name}\n`
      restore += this.restoreText(name, set.family, set.networks, swappable)
    }
    if (restore !== '') {
      await this.ipset(['restore'], restore)
      result.changed = true
      result.applied.push(`# ipset restore\n${restore}`)
    }
    for (const fam of [4, 6] as const) {
      const r = await this.sync.sync(fam, this.wantedRules(desired, fam), fam === 4 ? live4 : live6)
      merge(result, {
        changed: r.applied !== null,
        drift: r.drift,
        applied: r.applied === null ? [] : [`# ${TOOLS[fam].restore} --noflush -w 5\n${r.applied}`],
      })
      const hooks = ownHooks(desired, this.options.chains, (hook, inst) => hookRules(hook, inst.ports, `-m set --match-set ${this.setName(inst.name, fam)} src ${verdict(this.options.action, fam)}`))
      merge(result, shadowFields(iptablesShadows(fam === 4 ? live4 : live6, fam, hooks, (rule) => this.sync.refersToUs(rule))))
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
