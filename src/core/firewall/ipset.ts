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
 * one-transaction sync as the iptables backend, and carry its mark.
 *
 * An ipset set has no comment. Its mark is its initval, the seed of its hash
 * (kernels since late 2020 and ipset 7.11 list it, and `swap` carries it;
 * checked with ipset 7.17 on Linux 6.18): rcguard creates each set
 * with a seed derived from the machine's id and the set's name (an HMAC, so
 * it is neither guessable from outside, which keeps attackers from choosing
 * addresses that collide in the hash, nor lost with the database). A set with
 * rcguard's name and another seed, type or family is someone else's.
 */
import {createHmac} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {FirewallError} from '../errors.js'
import {firstErrorLine, toolHint, type Runner} from './runner.js'
import {commitPlans, hookRules, IptablesSync, marked, parseSave, refuseConflicts, reportBlocked, TOOLS, verdict, type Fam, type IptablesWanted, type LiveTable} from './iptables.js'
import {IPSET_TEMP_SUFFIXES, ipsetSetName} from './names.js'
import {
  emptyResult,
  hostOrCidr,
  merge,
  NO_ADOPTION,
  type ApplyResult,
  type BackendOptions,
  type DesiredState,
  type FirewallBackend,
  type Inspection,
  type Ownership,
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
  /** The seed of its hash as `ipset save` prints it (`0x0123abcd`); null when the kernel lists none. */
  initval: string | null
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
      initval: / initval (0x[0-9a-f]+)(?: |$)/.exec(rest)?.[1] ?? null,
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

/** The machine's id (systemd's /etc/machine-id, D-Bus's copy), or '' where there is none. Read once. */
let machineIdCache: string | undefined
function machineId(): string {
  if (machineIdCache !== undefined) return machineIdCache
  for (const path of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(path, 'utf8').trim()
      if (id !== '') return (machineIdCache = id)
    } catch {
      // the next place, or none
    }
  }
  return (machineIdCache = '')
}

/** The initval rcguard gives the set `name` (never 0, which the kernel takes as "choose one at random"). */
export function seedOf(name: string, key: string = machineId()): string {
  const n = createHmac('sha256', `rcguard ipset initval ${key}`).update(name).digest().readUInt32BE(0) || 1
  return `0x${n.toString(16).padStart(8, '0')}`
}

/** A set that is not wanted and must stay: which rule (or list:set) holds it. */
interface Holder {
  name: string
  by: string
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
    return ipsetSetName(this.options.prefix, instance, fam)
  }

  private isOurSet(name: string): boolean {
    return name.startsWith(`${this.options.prefix}-`)
  }

  /**
   * Whether a live set with our prefix is ours: null if so, else why not. A
   * set is ours when it is a hash:net set of the family its name says and
   * carries its seed, or (a temporary set a crashed run left) the seed of the
   * set it was filling; under Ownership.adopt, also with another seed (made
   * by rcguard before it marked its sets, the temporary ones a crash left
   * included). A kernel that lists no initval
   * (an older kernel) leaves nothing to mark a set with: there, name, type
   * and family are all there is to go by.
   */
  private setProblem(name: string, set: LiveSet, ownership: Ownership): string | null {
    const base = IPSET_TEMP_SUFFIXES.some((sfx) => name.endsWith(sfx)) ? name.slice(0, -1) : null
    const fam = /-([46])$/.exec(base ?? name)?.[1]
    const family = fam === '4' ? 'inet' : fam === '6' ? 'inet6' : null
    if (set.type !== 'hash:net') return `it is a ${set.type} set; rcguard makes hash:net`
    if (family === null) return 'rcguard makes no set of that name'
    if (set.family !== family) return `it is of family ${set.family}; rcguard makes ${family} for ${name}`
    if (set.initval === null || set.initval === seedOf(base ?? name)) return null
    if (ownership.adopt) return null
    return `its initval ${set.initval} is not rcguard's mark`
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
      for (const hook of this.options.chains) hooks.push(...hookRules(hook, inst.ports, target).map(marked))
    }
    return {chains: new Map(), hooks}
  }

  /** Refills `name` through the temporary set `tmp` (which must not exist), created with `name`'s seed. */
  private restoreText(name: string, family: string, networks: string[], exists = false, tmp = `${name}${IPSET_TEMP_SUFFIXES[0]}`): string {
    const {maxelem, hashsize} = setSize(networks.length)
    const spec = `hash:net family ${family} hashsize ${hashsize} maxelem ${maxelem} initval ${seedOf(name)}`
    const lines = [`create ${tmp} ${spec}`]
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

  /** Runs `ipset restore`; an ipset that knows no initval (older than 7.11: not tested here) is given the sets without one. */
  private async restoreSets(text: string): Promise<string> {
    const r = await this.runner.run('ipset', ['restore'], {input: text})
    if (r.exitCode === 0) return text
    // An unknown keyword stops restore at its first create line, before any set is filled or swapped.
    if (/initval/i.test(r.stderr) && / initval 0x/.test(text)) {
      return this.restoreSets(text.replace(/ initval 0x[0-9a-f]+/g, ''))
    }
    throw new FirewallError(`ipset restore failed (exit ${r.exitCode}): ${firstErrorLine(r.stderr)}; the live sets are unchanged${toolHint(r.stderr)}`)
  }

  /** Rules (in any table, either family) and list:sets that use the set `name` and are not rcguard's. */
  private async holdersOf(name: string, saved: string, ownership: Ownership): Promise<string[]> {
    const out: string[] = []
    for (const fam of [4, 6] as const) {
      const r = await this.runner.run(TOOLS[fam].save, [])
      if (r.exitCode !== 0) continue
      for (const block of r.stdout.split(/^(?=\*)/m)) {
        const table = /^\*(\S+)/.exec(block)?.[1] ?? ''
        const live = parseSave(`*filter\n${block.replace(/^\*\S+\n/, '')}`)
        for (const rule of this.sync.foreignUsers(live, name, ownership)) out.push(table === 'filter' ? rule : `-t ${table} ${rule}`)
      }
    }
    for (const m of saved.matchAll(/^add (\S+) (\S+)$/gm)) if (m[2] === name) out.push(`the list:set ${m[1] ?? ''}`)
    return out
  }

  async apply(desired: DesiredState, ownership: Ownership = NO_ADOPTION): Promise<ApplyResult> {
    const result = emptyResult()
    const want = this.wantedSets(desired)
    // The three reads at once: the kernel's dumps take most of a no-change run. While they run,
    // the wanted sets' fingerprints are computed here.
    const reads = Promise.all([this.ipset(['save']), this.sync.read(4), this.sync.read(6)])
    reads.catch(() => undefined)
    const fingerprints = new Map([...want].map(([name, set]) => [name, new Fingerprint().addNetworks(set.networks, set.family)]))
    const [saved, live4, live6] = await reads
    const live = parseIpsetSave(saved, (name) => this.isOurSet(name))
    const rules: Record<Fam, LiveTable> = {4: live4, 6: live6}
    const usedBy = (name: string): string => {
      const users = [...this.sync.foreignUsers(live4, name, ownership), ...this.sync.foreignUsers(live6, name, ownership)]
      return users.length === 0 ? '' : `; the rule "${users[0]}"${users.length > 1 ? ` and ${users.length - 1} more` : ''} use${users.length > 1 ? '' : 's'} it`
    }

    // Whose is every set with our prefix? A wanted name held by someone else refuses the run.
    const ours = new Set<string>()
    const conflicts: string[] = []
    for (const [name, set] of live) {
      const why = this.setProblem(name, set, ownership)
      if (why === null) ours.add(name)
      else if (want.has(name)) {
        conflicts.push(`ipset set ${name} is not rcguard's (${why}${usedBy(name)}): refused, nothing was changed; choose another firewall.prefix, or destroy or rename that set if nothing needs it`)
      } else {
        merge(result, {...emptyResult(), kept: [`ipset set ${name} left alone: it is not rcguard's (${why})`], notes: [`ipset set ${name} left alone: it is not rcguard's (${why})`]})
      }
    }

    let restore = ''
    for (const [name, set] of want) {
      const have = live.get(name)
      const {maxelem} = setSize(set.networks.length)
      let why: string | null = null
      if (have === undefined) why = `set ${name} is missing`
      else if (!ours.has(name)) continue
      else if (have.initval !== null && have.initval !== seedOf(name)) why = `set ${name} was made by an earlier rcguard without its mark: adopted and marked`
      else if (have.maxelem < maxelem && have.maxelem < set.networks.length * 2) why = `set ${name} is too small`
      else if (!have.members.equals(fingerprints.get(name) ?? new Fingerprint())) {
        const members = membersOf(saved, name)
        const add = set.networks.filter((n) => !members.has(hostOrCidr(n))).length
        why = `set ${name} differs (${add} to add, ${members.size - (set.networks.length - add)} to remove)`
      }
      if (why === null) continue
      // The temporary set: the first free name; one a crashed run of ours left is destroyed first.
      const tmp = IPSET_TEMP_SUFFIXES.map((sfx) => `${name}${sfx}`).find((t) => !live.has(t) || ours.has(t))
      if (tmp === undefined) {
        conflicts.push(
          `ipset sets ${IPSET_TEMP_SUFFIXES.map((sfx) => `${name}${sfx}`).join(', ')}, the names rcguard fills ${name} in, are all taken by sets not rcguard's: refused, nothing was changed; destroy one of them, or choose another firewall.prefix`,
        )
        continue
      }
      result.drift.push(why)
      if (live.has(tmp)) {
        restore += `destroy ${tmp}\n`
        ours.delete(tmp)
      }
      restore += this.restoreText(name, set.family, set.networks, have !== undefined, tmp)
    }

    // Nothing is changed until the rules of both families are planned too.
    const plans = ([4, 6] as const).map((fam) => this.sync.plan(fam, this.wantedRules(desired, fam), rules[fam], ownership))
    refuseConflicts(plans, conflicts)
    if (restore !== '') {
      result.applied.push(`# ipset restore\n${await this.restoreSets(restore)}`)
      result.changed = true
    }
    merge(result, await commitPlans(this.sync, plans))
    // Whether rules of others let packets past the ones just put in line (shadow.ts), in the listings already read.
    for (const fam of [4, 6] as const) {
      const hooks = ownHooks(desired, this.options.chains, (hook, inst) =>
        hookRules(hook, inst.ports, `-m set --match-set ${this.setName(inst.name, fam)} src ${verdict(this.options.action, fam)}`).map(marked),
      )
      merge(result, shadowFields(iptablesShadows(rules[fam], fam, hooks, (rule) => this.sync.refersToUs(rule))))
    }

    // Sets no longer wanted go only after the rules that used them; one that someone else's rule
    // still uses is emptied and kept, and the run says which rule holds it.
    const held: Holder[] = []
    for (const name of [...ours].filter((n) => !want.has(n))) {
      const r = await this.runner.run('ipset', ['destroy', name])
      if (r.exitCode === 0) {
        result.changed = true
        result.drift.push(`set ${name} is not wanted`)
        result.applied.push(`# ipset destroy ${name}\n`)
        continue
      }
      if (!/in use/i.test(r.stderr)) {
        throw new FirewallError(`ipset destroy ${name} failed (exit ${r.exitCode}): ${firstErrorLine(r.stderr)}${toolHint(r.stderr)}`)
      }
      if ((live.get(name)?.members.count ?? 0) > 0) {
        await this.ipset(['flush', name])
        result.changed = true
        result.drift.push(`set ${name} is not wanted`)
        result.applied.push(`# ipset flush ${name}\n`)
      }
      const by = await this.holdersOf(name, saved, ownership)
      held.push({name, by: by[0] === undefined ? 'a kernel component rcguard cannot name' : by[0].startsWith('the list:set') ? by[0] : `the rule "${by[0]}"`})
    }
    reportBlocked([
      ...plans.flatMap((p) => p.blocked),
      ...held.map((h) => `ipset set ${h.name} is no longer wanted, but ${h.by}, which is not rcguard's, uses it: rcguard emptied the set and keeps it; delete that rule and the next run removes the set`),
    ])
    return result
  }

  async inspect(desired: DesiredState, ownership: Ownership = NO_ADOPTION): Promise<Inspection> {
    const [saved, live4, live6] = await Promise.all([this.ipset(['save']), this.sync.read(4), this.sync.read(6)])
    const live = parseIpsetSave(saved, (name) => this.isOurSet(name))
    const rules: Record<Fam, LiveTable> = {4: live4, 6: live6}
    const out: Inspection = {drift: [], warnings: []}
    // The sets' members are left to hacks (their fingerprints): here, whether each set is there at all.
    for (const name of this.wantedSets(desired).keys()) if (!live.has(name)) out.drift.push(`set ${name} is missing`)
    for (const fam of [4, 6] as const) {
      out.drift.push(...this.sync.plan(fam, this.wantedRules(desired, fam), rules[fam], ownership).drift)
      const hooks = ownHooks(desired, this.options.chains, (hook, inst) =>
        hookRules(hook, inst.ports, `-m set --match-set ${this.setName(inst.name, fam)} src ${verdict(this.options.action, fam)}`).map(marked),
      )
      out.warnings.push(...(shadowFields(iptablesShadows(rules[fam], fam, hooks, (rule) => this.sync.refersToUs(rule))).warnings ?? []))
    }
    return out
  }

  async remove(ownership: Ownership = NO_ADOPTION): Promise<ApplyResult> {
    return this.apply({instances: []}, ownership)
  }
}
