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
 *
 * Every chain rcguard makes starts with a rule that only carries the comment
 * MARK, and every hook rule carries it too: only chains and rules so marked
 * (see IptablesSync) are ever changed or deleted. A chain with rcguard's
 * prefix that is someone else's is refused at a name rcguard needs, and left
 * alone at any other.
 */
import {FirewallError} from '../errors.js'
import {firstErrorLine, toolHint, type Runner} from './runner.js'
import {iptablesChainName} from './names.js'
import {
  emptyResult,
  ForeignObjectError,
  MARK,
  merge,
  NO_ADOPTION,
  type Ownership,
  type Action,
  type ApplyResult,
  type BackendOptions,
  type DesiredState,
  type FirewallBackend,
  type Inspection,
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
  /** Chains of ours with their rule lines (the mark first: see chainMark). */
  chains: Map<string, string[]>
  /** Our rules in chains that are not ours (the hook chains), each with the mark. */
  hooks: string[]
}

function permissionHint(stderr: string): string {
  return /Permission denied|you must be root|Operation not permitted/i.test(stderr) ? ' (run rcguard as root, or use --dry-run)' : ''
}

/** The mark as iptables-save prints it (nf_tables and legacy both quote a comment with a space). */
export const MARK_MATCH = `-m comment --comment "${MARK}"`

/** The first rule of every chain rcguard makes: no target, so it only carries the mark. */
export function chainMark(chain: string): string {
  return `-A ${chain} ${MARK_MATCH}`
}

/** A rule line with the mark before its target: `-A INPUT -p tcp ... -j X` → `... -m comment --comment "managed by rcguard" -j X`. */
export function marked(rule: string): string {
  const at = rule.lastIndexOf(' -j ')
  return `${rule.slice(0, at)} ${MARK_MATCH}${rule.slice(at)}`
}

/** A hook rule as rcguard made it before it marked its rules (adopted under Ownership.adopt). */
const OLD_HOOK =
  /^-A (?:INPUT|FORWARD|DOCKER-USER) (?:-p tcp -m multiport --dports [0-9,]+ |-p tcp -m conntrack --ctorigdstport [0-9]+ --ctdir ORIGINAL )?(?:-j \S+|-m set --match-set \S+ src -j (?:DROP|REJECT --reject-with icmp6?-port-unreachable))$/

/** A rule of an instance chain as rcguard made it before it marked its chains. */
const OLD_CHAIN_RULE = /^-A \S+ -s \S+ -j (?:DROP|REJECT --reject-with icmp6?-port-unreachable)$/

/** What one family's sync will do, worked out before anything is changed. */
export interface SyncPlan {
  fam: Fam
  drift: string[]
  /** The iptables-restore lines; empty: nothing to change. */
  lines: string[]
  /** Names rcguard needs that are someone else's: the run is refused before any change. */
  conflicts: string[]
  /** Chains of ours that stay because a rule of someone else's uses them: reported after the change. */
  blocked: string[]
  /** Objects with rcguard's prefix that are not rcguard's, left alone. */
  kept: string[]
}

/**
 * Brings the filter table's objects of rcguard's (named with `prefix`, and
 * proven its own: see Ownership in backend.ts) to the wanted state in one
 * iptables-restore transaction per family. A chain is rcguard's when its
 * first rule is chainMark; a rule in another chain is rcguard's when it
 * carries the mark and jumps to, or matches a set of, rcguard's prefix.
 */
export class IptablesSync {
  constructor(
    private readonly runner: Runner,
    readonly prefix: string,
  ) {}

  isOurs(name: string): boolean {
    return name.startsWith(this.prefix)
  }

  /** A rule in a chain that is not ours but refers to us: it jumps to our chain or matches our set. */
  refersToUs(rule: string): boolean {
    return this.target(rule) !== null
  }

  /** The chain or set of ours a rule jumps to or matches, if any. */
  private target(rule: string): string | null {
    const target = / -j (\S+)/.exec(rule)?.[1]
    const set = / --match-set (\S+) /.exec(rule)?.[1]
    if (target !== undefined && this.isOurs(target)) return target
    if (set !== undefined && this.isOurs(set)) return set
    return null
  }

  /** Whether a marked hook rule of ours jumps to `chain`. */
  private jumpedToByUs(live: LiveTable, chain: string): boolean {
    const jump = new RegExp(` ${escapeRe(MARK_MATCH)} -j ${escapeRe(chain)}$`)
    for (const [name, rules] of live.rules) if (!this.isOurs(name) && rules.some((r) => jump.test(r))) return true
    return false
  }

  /** Whether a rule in a chain that is not ours is one of our hook rules. */
  private ourHook(rule: string, ownership: Ownership): boolean {
    if (this.target(rule) === null) return false
    return rule.includes(` ${MARK_MATCH} `) || (ownership.adopt && OLD_HOOK.test(rule))
  }

  /**
   * Whether a chain named with our prefix is ours: null if so, else why not.
   * It is when its first rule is the mark, or when a marked hook rule of ours
   * jumps to it: rcguard adds that rule only to a chain of its own, and while
   * the rule is there nobody can delete the chain and make another of the
   * same name (iptables refuses to delete a chain in use), so the mark may
   * have been flushed out of it but the chain is still rcguard's. A wanted chain that is empty and that no rule of anyone else's uses
   * holds nothing of anyone's and is taken (that is what `iptables -F`, which
   * empties every chain, the mark with the rest, leaves); it is never deleted
   * on that ground.
   */
  private chainProblem(chain: string, live: LiveTable, ownership: Ownership, wanted: boolean): string | null {
    const rules = live.rules.get(chain) ?? []
    if (rules[0] === chainMark(chain)) return null
    if (this.jumpedToByUs(live, chain)) return null
    if (wanted && rules.length === 0 && this.foreignUsers(live, chain, ownership).length === 0) return null
    const unmarked = rules.length === 0 ? `it is empty, without rcguard's mark (a first rule ${MARK_MATCH})` : `its first rule is not rcguard's mark, ${MARK_MATCH}`
    if (!ownership.adopt) return unmarked
    const odd = rules.find((r) => !OLD_CHAIN_RULE.test(r))
    return odd === undefined ? null : `${unmarked}, and it holds the rule "${odd}", which rcguard never makes`
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

  /**
   * The rules that jump to (or go to) the chain `name`, or match the set
   * `name`, and are not ours: in any chain but `name` itself and the chains
   * of ours in `skip` (which this run empties).
   */
  foreignUsers(live: LiveTable, name: string, ownership: Ownership, skip: ReadonlySet<string> = new Set()): string[] {
    const uses = new RegExp(` -[jg] ${escapeRe(name)}(?: |$)| --match-set ${escapeRe(name)} `)
    const out: string[] = []
    for (const [chain, rules] of live.rules) {
      if (chain === name || skip.has(chain)) continue
      for (const rule of rules) {
        if (!uses.test(rule)) continue
        if (!this.isOurs(chain) && this.ourHook(rule, ownership)) continue
        out.push(rule)
      }
    }
    return out
  }

  /** What it takes to make one family's filter table hold exactly the wanted chains and hook rules of ours. */
  plan(fam: Fam, want: IptablesWanted, live: LiveTable, ownership: Ownership): SyncPlan {
    const label = TOOLS[fam].label
    const plan: SyncPlan = {fam, drift: [], lines: [], conflicts: [], blocked: [], kept: []}
    const {drift, lines} = plan
    const owned = new Set<string>()
    for (const chain of live.chains) {
      if (!this.isOurs(chain)) continue
      const why = this.chainProblem(chain, live, ownership, want.chains.has(chain))
      if (why === null) {
        owned.add(chain)
        continue
      }
      const users = this.foreignUsers(live, chain, ownership)
      const used = users.length === 0 ? '' : `; the rule "${users[0]}"${users.length > 1 ? ` and ${users.length - 1} more` : ''} use${users.length > 1 ? '' : 's'} it`
      if (want.chains.has(chain)) {
        plan.conflicts.push(
          `${label}: chain ${chain} is not rcguard's (${why}${used}): refused, nothing was changed; choose another firewall.prefix, or rename or delete that chain if nothing needs it`,
        )
      } else {
        plan.kept.push(`${label}: chain ${chain} left alone: it is not rcguard's (${why})`)
      }
    }

    for (const [chain, rules] of want.chains) {
      const have = live.rules.get(chain) ?? []
      if (!live.chains.has(chain)) {
        drift.push(`${label}: chain ${chain} is missing`)
      } else if (have.join('\n') !== rules.join('\n')) {
        const haveSet = new Set(have)
        const wantSet = new Set(rules.slice(1))
        const add = rules.slice(1).filter((r) => !haveSet.has(r)).length
        const del = have.filter((r) => r !== chainMark(chain) && !wantSet.has(r)).length
        const mark = have[0] === chainMark(chain) ? '' : ', and its mark is missing'
        drift.push(`${label}: chain ${chain} differs (${add} rule(s) to add, ${del} to remove${mark})`)
      } else {
        continue
      }
      lines.push(`:${chain} - [0:0]`, ...rules)
    }

    // Our rules in other chains: exactly one of each wanted rule, none other. Rules of others stay.
    const remaining: string[] = []
    for (const [chain, rules] of live.rules) {
      if (!this.isOurs(chain)) remaining.push(...rules.filter((r) => this.ourHook(r, ownership)))
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

    // Chains of ours that are no longer wanted (an instance was removed, the backend changed). One that a rule
    // of someone else's jumps to cannot go (iptables refuses, and the whole transaction with it): it is emptied
    // down to its mark and kept, and the run says which rule holds it.
    const flushes: string[] = []
    const deletes: string[] = []
    for (const chain of owned) {
      if (want.chains.has(chain)) continue
      const users = this.foreignUsers(live, chain, ownership, owned)
      if (users.length === 0) {
        drift.push(`${label}: chain ${chain} is not wanted`)
        flushes.push(`-F ${chain}`)
        deletes.push(`-X ${chain}`)
        continue
      }
      const rules = live.rules.get(chain) ?? []
      if (rules.length !== 1 || rules[0] !== chainMark(chain)) {
        drift.push(`${label}: chain ${chain} is not wanted`)
        lines.push(`:${chain} - [0:0]`, chainMark(chain))
      }
      plan.blocked.push(
        `${label}: chain ${chain} is no longer wanted, but the rule "${users[0]}", which is not rcguard's, jumps to it: rcguard emptied the chain and keeps it; delete that rule and the next run removes the chain`,
      )
    }
    // Every chain emptied before any is deleted: a chain can go only once nothing jumps to it.
    lines.push(...flushes, ...deletes)
    return plan
  }

  /** Applies a plan; the transaction's text, or null when there was nothing to change. */
  async commit(plan: SyncPlan): Promise<string | null> {
    if (plan.lines.length === 0) return null
    return this.restore(plan.fam, plan.lines)
  }
}

/** Commits each family's plan; the drift, the transactions and what was left alone. */
export async function commitPlans(sync: IptablesSync, plans: SyncPlan[]): Promise<ApplyResult> {
  const result = emptyResult()
  for (const plan of plans) {
    const applied = await sync.commit(plan)
    merge(result, {
      changed: applied !== null,
      drift: plan.drift,
      applied: applied === null ? [] : [`# ${TOOLS[plan.fam].restore} --noflush -w 5\n${applied}`],
      ...(plan.kept.length === 0 ? {} : {kept: plan.kept, notes: plan.kept}),
    })
  }
  return result
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Refuses (before any change) when a plan found a name of ours taken. */
export function refuseConflicts(plans: SyncPlan[], more: string[] = []): void {
  const all = [...more, ...plans.flatMap((p) => p.conflicts)]
  if (all.length > 0) throw new ForeignObjectError(`${all[0]}${all.length > 1 ? ` (and ${all.length - 1} more object(s) not rcguard's)` : ''}`)
}

/** After the change: an error naming what holds a chain or set of ours that should be gone. */
export function reportBlocked(blocked: string[]): void {
  if (blocked.length > 0) throw new ForeignObjectError(`${blocked[0]}${blocked.length > 1 ? ` (and ${blocked.length - 1} more)` : ''}`)
}

export class IptablesBackend implements FirewallBackend {
  readonly name = 'iptables'
  private readonly sync: IptablesSync

  constructor(private readonly options: BackendOptions) {
    this.sync = new IptablesSync(options.runner, `${options.prefix}-`)
  }

  chainName(instance: string): string {
    return iptablesChainName(this.options.prefix, instance)
  }

  /** Desired chains and hook rules, in iptables-save's own spelling. */
  wanted(desired: DesiredState, fam: Fam): IptablesWanted {
    const chains = new Map<string, string[]>()
    const hooks: string[] = []
    for (const inst of desired.instances) {
      const chain = this.chainName(inst.name)
      const nets = fam === 4 ? inst.v4 : inst.v6
      chains.set(chain, [chainMark(chain), ...nets.map((net) => `-A ${chain} -s ${net} ${verdict(this.options.action, fam)}`)])
      for (const hook of this.options.chains) hooks.push(...hookRules(hook, inst.ports, `-j ${chain}`).map(marked))
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

  async apply(desired: DesiredState, ownership: Ownership = NO_ADOPTION): Promise<ApplyResult> {
    // Both families are read and planned before either is changed: a refusal leaves both as they were.
    const lives = {4: await this.sync.read(4), 6: await this.sync.read(6)}
    const plans: SyncPlan[] = []
    for (const fam of [4, 6] as const) plans.push(this.sync.plan(fam, this.wanted(desired, fam), lives[fam], ownership))
    refuseConflicts(plans)
    const result = await commitPlans(this.sync, plans)
    reportBlocked(plans.flatMap((p) => p.blocked))
    const hooks = ownHooks(desired, this.options.chains, (hook, inst) => hookRules(hook, inst.ports, `-j ${this.chainName(inst.name)}`).map(marked))
    for (const fam of [4, 6] as const) merge(result, shadowFields(iptablesShadows(lives[fam], fam, hooks, (rule) => this.sync.refersToUs(rule))))
    return result
  }

  async inspect(desired: DesiredState, ownership: Ownership = NO_ADOPTION): Promise<Inspection> {
    const lives = {4: await this.sync.read(4), 6: await this.sync.read(6)}
    const hooks = ownHooks(desired, this.options.chains, (hook, inst) => hookRules(hook, inst.ports, `-j ${this.chainName(inst.name)}`).map(marked))
    const out: Inspection = {drift: [], warnings: []}
    for (const fam of [4, 6] as const) {
      out.drift.push(...this.sync.plan(fam, this.wanted(desired, fam), lives[fam], ownership).drift)
      out.warnings.push(...(shadowFields(iptablesShadows(lives[fam], fam, hooks, (rule) => this.sync.refersToUs(rule))).warnings ?? []))
    }
    return out
  }

  async remove(ownership: Ownership = NO_ADOPTION): Promise<ApplyResult> {
    return this.apply({instances: []}, ownership)
  }
}
