/**
 * nftables backend: one table `inet <prefix>` holding, per instance, an
 * IPv4 and an IPv6 set (`flags interval`, so networks and addresses mix) and
 * the rules that drop their traffic on the instance's ports — in a chain on
 * the input hook, and for Roundcube in containers (chains DOCKER-USER or
 * FORWARD) in a chain on the prerouting hook, before Docker's address
 * translation changes the port.
 *
 * The table is replaced whole in one `nft -f` transaction (declared, deleted
 * and declared again with its full content): the kernel switches from the
 * complete old rule set to the complete new one. Nothing is run when the live
 * table already matches: its sets' elements, its chains and its rules, which
 * carry a comment naming their content.
 *
 * The table is rcguard's when it carries the comment MARK (nft 1.0.6 lists a
 * table's comment only in its text output, so the marks are read from `nft -t
 * list ruleset`, which lists no set elements). rcguard owns that table whole:
 * whatever else is added to it goes with the next change. A table of the same
 * name without the mark is someone else's (Debian's own /etc/nftables.conf
 * makes `inet filter`): it is refused, never replaced, and never deleted.
 *
 * Listing a large table is the slow part (nft spends about 4 µs of CPU per
 * element), so with a check cache the table is listed only when the kernel's
 * ruleset generation moved since it was last seen as wanted, or when the
 * wanted table changed (see generation.ts).
 */
import {createHash} from 'node:crypto'
import {FirewallError} from '../errors.js'
import {firstErrorLine, toolHint, type Runner} from './runner.js'
import {
  emptyResult,
  ForeignObjectError,
  hostOrCidr,
  MARK,
  merge,
  NO_ADOPTION,
  type ApplyResult,
  type BackendOptions,
  type DesiredState,
  type FirewallBackend,
  type Inspection,
  type Ownership,
} from './backend.js'
import {oneLater, readGeneration, type CheckCacheEntry} from './generation.js'
import {nftNameProblem, nftSetStem} from './names.js'
import {nftShapeProblem, tableComments} from './nft-shape.js'
import {nftShadows, shadowFields} from './shadow.js'

interface WantedChain {
  name: string
  hook: 'input' | 'prerouting'
  priority: number
  rules: string[]
}

interface WantedTable {
  /** interval: the set holds networks (IPv6 widened to a prefix); plain hash sets are quicker to fill and to list. */
  sets: Map<string, {type: 'ipv4_addr' | 'ipv6_addr'; interval: boolean; elements: string[]}>
  chains: WantedChain[]
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

function digest(text: string): string {
  return sha256(text).slice(0, 12)
}

/** An nft element from `nft -j` output, as canonical CIDR text. */
function elementText(e: unknown): string | null {
  if (typeof e === 'string') return e.includes('/') ? e : `${e}/${e.includes(':') ? 128 : 32}`
  if (e !== null && typeof e === 'object') {
    const o = e as {prefix?: {addr?: string; len?: number}; elem?: {val?: unknown}}
    if (o.prefix?.addr !== undefined && o.prefix.len !== undefined) return `${o.prefix.addr}/${o.prefix.len}`
    if (o.elem !== undefined) return elementText(o.elem.val)
  }
  return null
}

export class NftablesBackend implements FirewallBackend {
  readonly name = 'nftables'
  private readonly table: string
  private readonly runner: Runner
  private listed: unknown[] | null = null

  constructor(private readonly options: BackendOptions) {
    this.table = options.prefix
    this.runner = options.runner
  }

  /** nft identifiers take no "-" and start with no digit: see nftSetStem (config refuses names that would then collide). */
  setName(instance: string, fam: 4 | 6): string {
    return `${nftSetStem(instance)}_v${fam}`
  }

  private wanted(desired: DesiredState): WantedTable {
    const sets: WantedTable['sets'] = new Map()
    const verdict = this.options.action === 'DROP' ? 'drop' : 'reject'
    const input: string[] = []
    const pre: string[] = []
    for (const inst of desired.instances) {
      sets.set(this.setName(inst.name, 4), {type: 'ipv4_addr', interval: inst.v4.some((n) => !n.endsWith('/32')), elements: inst.v4})
      sets.set(this.setName(inst.name, 6), {type: 'ipv6_addr', interval: inst.v6.some((n) => !n.endsWith('/128')), elements: inst.v6})
      const ports = inst.ports === 'all' ? '' : `tcp dport { ${inst.ports.join(', ')} } `
      for (const fam of [4, 6] as const) {
        const match = `${ports}${fam === 4 ? 'ip' : 'ip6'} saddr @${this.setName(inst.name, fam)}`
        input.push(`${match} ${verdict}`)
        // reject is not allowed before routing: prerouting drops.
        pre.push(`${match} drop`)
      }
    }
    const chains: WantedChain[] = []
    if (this.options.chains.includes('INPUT')) chains.push({name: 'input', hook: 'input', priority: -10, rules: input})
    if (this.options.chains.some((c) => c !== 'INPUT')) chains.push({name: 'prerouting', hook: 'prerouting', priority: -150, rules: pre})
    return {sets, chains}
  }

  /** The table declared whole; with `replace`, preceded by its deletion, in the same transaction. */
  private script(want: WantedTable, replace: boolean): string {
    const body = this.declaration(want)
    const t = `inet ${this.table}`
    return replace ? `table ${t} {}\ndelete table ${t}\n${body}` : body
  }

  private declaration(want: WantedTable): string {
    const t = `inet ${this.table}`
    const out: string[] = []
    out.push(`table ${t} {`, `  comment "${MARK}"`)
    for (const [name, set] of want.sets) {
      out.push(`  set ${name} {`, `    type ${set.type}`)
      if (set.interval) out.push('    flags interval')
      if (set.elements.length > 0) out.push(`    elements = { ${set.elements.map(hostOrCidr).join(', ')} }`)
      out.push('  }')
    }
    for (const chain of want.chains) {
      out.push(`  chain ${chain.name} {`, `    type filter hook ${chain.hook} priority ${chain.priority}; policy accept;`)
      for (const rule of chain.rules) out.push(`    ${rule} comment "rcguard ${digest(rule)}"`)
      out.push('  }')
    }
    out.push('}')
    return `${out.join('\n')}\n`
  }

  render(desired: DesiredState): string {
    return `# nft -f - (the table replaced in one transaction)\n${this.script(this.wanted(desired), true)}`
  }

  private async nft(args: string[], input?: string): Promise<{stdout: string; stderr: string; exitCode: number}> {
    return this.runner.run('nft', args, input === undefined ? {} : {input})
  }

  /** The live table as nft -j lists it, or null when it does not exist. */
  private async live(): Promise<unknown[] | null> {
    const r = await this.nft(['-j', 'list', 'table', 'inet', this.table])
    if (r.exitCode !== 0) {
      if (/No such file or directory/.test(r.stderr)) return null
      throw new FirewallError(`nft list failed (exit ${r.exitCode}): ${firstErrorLine(r.stderr)}${permission(r.stderr)}${toolHint(r.stderr)}`)
    }
    try {
      return (JSON.parse(r.stdout) as {nftables: unknown[]}).nftables
    } catch {
      throw new FirewallError('nft -j list printed something that is not JSON: is nft older than 0.9.3?')
    }
  }

  /**
   * The table's sets (without their elements), chains and rules, from the
   * whole ruleset listed tersely: nft 1.0.6 fetches every element for any
   * listing scoped to a table, even with -t, but not for this one.
   */
  private async liveStructure(): Promise<unknown[] | null> {
    const all = await this.ruleset()
    if (all === null) return null
    const ours = (o: {family?: string; name?: string; table?: string} | undefined, key: 'name' | 'table') => o?.family === 'inet' && o[key] === this.table
    const table = all.filter((item) => {
      const o = item as Record<string, {family?: string; name?: string; table?: string} | undefined>
      return ours(o.table, 'name') || ours(o.set, 'table') || ours(o.chain, 'table') || ours(o.rule, 'table')
    })
    return table.some((item) => (item as {table?: unknown}).table !== undefined) ? table : null
  }

  /** The whole ruleset without set elements (kept for the shadowing check), or null when it cannot be read. */
  private async ruleset(): Promise<unknown[] | null> {
    const r = await this.nft(['-j', '-t', 'list', 'ruleset'])
    if (r.exitCode !== 0) return null
    try {
      this.listed = (JSON.parse(r.stdout) as {nftables: unknown[]}).nftables
      return this.listed
    } catch {
      return null
    }
  }

  private differences(live: unknown[] | null, want: WantedTable, elements = true): string[] {
    if (live === null) return want.sets.size > 0 || want.chains.length > 0 ? [`table inet ${this.table} is missing`] : []
    const drift: string[] = []
    const sets = new Map<string, {type?: string; flags?: string[]; elem?: unknown[]}>()
    const chains = new Map<string, {hook?: string; prio?: number; policy?: string; type?: string}>()
    const rules = new Map<string, string[]>()
    for (const item of live) {
      const o = item as {
        set?: {name: string; type?: string; flags?: string[]; elem?: unknown[]}
        chain?: {name: string; hook?: string; prio?: number; policy?: string; type?: string}
        rule?: {chain: string; comment?: string}
      }
      if (o.set !== undefined) sets.set(o.set.name, o.set)
      if (o.chain !== undefined) chains.set(o.chain.name, o.chain)
      if (o.rule !== undefined) rules.set(o.rule.chain, [...(rules.get(o.rule.chain) ?? []), o.rule.comment ?? ''])
    }
    for (const [name, set] of want.sets) {
      const have = sets.get(name)
      if (have === undefined) {
        drift.push(`set ${name} is missing`)
        continue
      }
      if (have.type !== set.type || (have.flags ?? []).includes('interval') !== set.interval) drift.push(`set ${name} has the wrong type`)
      if (!elements) continue
      const haveElems = new Set((have.elem ?? []).map(elementText))
      const add = set.elements.filter((e) => !haveElems.has(e)).length
      const del = haveElems.size - (set.elements.length - add)
      if (add > 0 || del > 0) drift.push(`set ${name} differs (${add} to add, ${del} to remove)`)
    }
    for (const name of sets.keys()) if (!want.sets.has(name)) drift.push(`set ${name} is not wanted`)
    for (const chain of want.chains) {
      const have = chains.get(chain.name)
      if (have === undefined) {
        drift.push(`chain ${chain.name} is missing`)
        continue
      }
      if (have.hook !== chain.hook || have.prio !== chain.priority || have.policy !== 'accept' || have.type !== 'filter') {
        drift.push(`chain ${chain.name} has the wrong hook, priority or policy`)
      }
      const wantComments = chain.rules.map((r) => `rcguard ${digest(r)}`)
      if ((rules.get(chain.name) ?? []).join('\n') !== wantComments.join('\n')) drift.push(`chain ${chain.name}: its rules differ`)
    }
    for (const name of chains.keys()) if (!want.chains.some((c) => c.name === name)) drift.push(`chain ${name} is not wanted`)
    return drift
  }

  private async run(script: string): Promise<void> {
    const r = await this.nft(['-f', '-'], script)
    if (r.exitCode !== 0) {
      throw new FirewallError(`nft refused the rule set (exit ${r.exitCode}): ${firstErrorLine(r.stderr)}; no rule was changed${permission(r.stderr)}${toolHint(r.stderr)}`)
    }
  }

  /**
   * Whether the table exists and is rcguard's. An unmarked one is adopted
   * only as `ownership` allows and when it is exactly of rcguard's shape;
   * otherwise `why` says whose it seems to be.
   */
  private async owner(ownership: Ownership): Promise<{exists: false} | {exists: true; ours: true; adopted: unknown[] | null} | {exists: true; ours: false; why: string}> {
    const r = await this.nft(['-t', 'list', 'ruleset'])
    if (r.exitCode !== 0) {
      throw new FirewallError(`nft list failed (exit ${r.exitCode}): ${firstErrorLine(r.stderr)}${permission(r.stderr)}${toolHint(r.stderr)}`)
    }
    // nft's listing is tables, their indented contents, closing braces and "# Warning: ..." lines (newer nft
    // prints those on standard output for iptables-nft's tables): anything else cannot be trusted.
    if (!r.stdout.split('\n').every((line) => /^(?:table \S+ \S+ \{|\t.*|\}|# .*|)$/.test(line))) {
      throw new FirewallError('nft list ruleset printed something that is not a rule set: its output cannot be trusted; nothing was changed')
    }
    const comment = tableComments(r.stdout).get(`inet ${this.table}`)
    if (comment === undefined) return {exists: false}
    if (comment === MARK) return {exists: true, ours: true, adopted: null}
    const unmarked = comment === null ? `it has no comment "${MARK}"` : `its comment is "${comment}", not "${MARK}"`
    if (!ownership.adopt) return {exists: true, ours: false, why: unmarked}
    const live = await this.live()
    const shape = live === null ? 'it vanished while being checked' : nftShapeProblem(live)
    if (shape === null && live !== null) return {exists: true, ours: true, adopted: live}
    return {exists: true, ours: false, why: `${unmarked}, and ${shape}`}
  }

  private refusal(why: string): ForeignObjectError {
    return new ForeignObjectError(
      `table inet ${this.table} is not rcguard's (${why}): refused, nothing was changed; choose another firewall.prefix, or remove or rename that table if nothing needs it`,
    )
  }

  async apply(desired: DesiredState, ownership: Ownership = NO_ADOPTION): Promise<ApplyResult> {
    this.listed = null
    const result = await this.bringInLine(desired, ownership)
    // Whether the table, as wanted, is reached: from the ruleset the cached path listed, else listed now (without elements).
    const all = this.listed ?? (await this.ruleset()) ?? []
    return merge(result, shadowFields(nftShadows(all, {table: this.table, chains: this.wanted(desired).chains}, desired)))
  }

  async inspect(desired: DesiredState): Promise<Inspection> {
    this.listed = null
    const want = this.wanted(desired)
    const drift = this.differences(await this.liveStructure(), want, false)
    const all = this.listed ?? (await this.ruleset()) ?? []
    return {drift, warnings: shadowFields(nftShadows(all, {table: this.table, chains: want.chains}, desired)).warnings ?? []}
  }

  private async bringInLine(desired: DesiredState, ownership: Ownership): Promise<ApplyResult> {
    const problem = nftNameProblem(this.table)
    if (problem !== null) throw new FirewallError(`firewall.prefix ${this.table} cannot name an nftables table: ${problem}; choose another prefix`)
    const want = this.wanted(desired)
    const cache = this.options.checkCache
    const declaration = this.declaration(want)
    const wanted: CheckCacheEntry = {token: '', digest: sha256(declaration), sets: Object.fromEntries([...want.sets].map(([name, set]) => [name, sha256(set.elements.join(','))]))}
    const before = cache === undefined ? null : await readGeneration(this.runner)
    const owner = await this.owner(ownership)
    if (owner.exists && !owner.ours) throw this.refusal(owner.why)
    // Nothing committed since the table was last seen (as it was then wanted): it still is that table.
    const adopted = owner.exists ? owner.adopted : null
    const seen = before === null || adopted !== null ? null : await cache?.read()
    let trusted = before !== null && seen?.token === before.token ? seen : null
    let drift: string[]
    let notes: string[] = []
    let exists = true
    if (trusted?.digest === wanted.digest) {
      // Its chains and sets, listed without their elements, are checked all the same: cheap, and they
      // would show a token that matched by chance (an inode reused by a recreated namespace).
      if (this.differences(await this.liveStructure(), want, false).length === 0) {
        return {...emptyResult(), notes: [`nf_tables generation ${before?.genid} unchanged since the table was last seen as wanted: its elements were not listed again`]}
      }
      trusted = null
    }
    if (trusted != null) {
      drift = this.changedSince(trusted, wanted)
      notes = [`nf_tables generation ${before?.genid} unchanged since the table was last seen: replaced without listing its elements`]
    } else {
      const live = adopted ?? (owner.exists ? await this.live() : null)
      drift = this.differences(live, want)
      // Replaced even when its content is as wanted: the new table carries the mark.
      if (adopted !== null) drift.unshift(`table inet ${this.table}: made by an earlier rcguard without its mark, adopted and marked`)
      if (drift.length === 0) {
        // Read before listing: a change made meanwhile moved the generation past it.
        if (before !== null) await cache?.write({...wanted, token: before.token})
        return emptyResult()
      }
      exists = live !== null
    }
    await cache?.clear()
    const script = exists ? this.script(want, true) : declaration
    await this.run(script)
    if (before !== null && cache !== undefined) {
      // Only when this transaction was the one and only commit since "before" is the new generation known to hold exactly this table.
      const after = await readGeneration(this.runner)
      if (after !== null && oneLater(before, after)) await cache.write({...wanted, token: after.token})
    }
    return {changed: true, drift, applied: [`# nft -f -\n${script}`], notes}
  }

  /** What changed between the table last seen and the one wanted now, from their digests. */
  private changedSince(seen: CheckCacheEntry, wanted: CheckCacheEntry): string[] {
    const before = seen.sets ?? {}
    const now = wanted.sets ?? {}
    const out: string[] = []
    for (const [name, digest] of Object.entries(now)) {
      if (before[name] === undefined) out.push(`set ${name} is missing`)
      else if (before[name] !== digest) out.push(`set ${name}: the wanted elements changed`)
    }
    for (const name of Object.keys(before)) if (now[name] === undefined) out.push(`set ${name} is not wanted`)
    return out.length > 0 ? out : [`table inet ${this.table}: the wanted chains or rules changed`]
  }

  async remove(ownership: Ownership = NO_ADOPTION): Promise<ApplyResult> {
    // A name nft cannot parse was never a table of rcguard's (flush looks in every tool under every prefix).
    if (nftNameProblem(this.table) !== null) return emptyResult()
    await this.options.checkCache?.clear()
    const owner = await this.owner(ownership)
    if (!owner.exists) return emptyResult()
    if (!owner.ours) {
      const line = `table inet ${this.table} left alone: it is not rcguard's (${owner.why})`
      return {...emptyResult(), kept: [line], notes: [line]}
    }
    const script = `delete table inet ${this.table}\n`
    await this.run(script)
    return {changed: true, drift: [`table inet ${this.table} is not wanted`], applied: [`# nft -f -\n${script}`]}
  }
}

function permission(stderr: string): string {
  return /Operation not permitted|Permission denied/i.test(stderr) ? ' (run rcguard as root, or use --dry-run)' : ''
}
