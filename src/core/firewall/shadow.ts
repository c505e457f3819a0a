/**
 * Whether rcguard's rules are reached: the rules of others that let a packet
 * from a blocked address past rcguard's own, found in the listings the
 * backends read anyway (iptables-save, `nft -j -t list ruleset`). Pure
 * functions: a listing and the desired state in, findings out (per tool in
 * shadow/iptables.ts and shadow/nftables.ts), and here the warnings and
 * notes made of them.
 *
 * What bypasses depends on the tool:
 *
 * - iptables and ip6tables (legacy or nft): the rules of one built-in chain
 *   run in order and the first verdict ends the chain. A rule above
 *   rcguard's hook rule in the same chain (INPUT, FORWARD, DOCKER-USER, and
 *   for DOCKER-USER the FORWARD rules before the jump to it) bypasses it
 *   when it can match a guarded port and ends the chain with ACCEPT, with
 *   RETURN (the chain's policy then decides, or for DOCKER-USER the rest of
 *   FORWARD), with a goto from which packets do not come back, with NFQUEUE
 *   (the program's "accept" skips the rest), or by jumping to a chain of its
 *   own that can ACCEPT. A rule that cannot match the guarded traffic does
 *   not: another tcp port, another protocol, `-i lo`, a local source, a
 *   loopback destination, later fragments. A rule for some sources only
 *   (`-s`, `--src-range`) bypasses rcguard only for blocked networks inside
 *   them: a warning when one is blocked now, else a note for --verbose (an
 *   admin's "let the office in" rule is a whitelist, not an accident). An
 *   accept of connection-tracking state ESTABLISHED/RELATED lets a blocked
 *   address keep the connections it already has open (HTTP keep-alive goes
 *   on trying passwords): a warning of its own kind. Another table's rules
 *   (nat, mangle) and the other iptables flavour run in hooks of their own:
 *   their ACCEPT ends only their own chain.
 * - nftables: `accept` ends one base chain only; the packet goes on to every
 *   other base chain on the hook, rcguard's included, so no foreign accept
 *   (at any priority, in any table, nor iptables-nft's) bypasses it. What
 *   does is a change to the packet before rcguard's earliest chain sees it:
 *   a destination port rewritten (dnat/redirect with a port, `tcp dport
 *   set`, iptables-nft's DNAT/REDIRECT) to one rcguard does not guard, the
 *   packet sent on to another host (dnat to an address: it never reaches
 *   the input hook), or its source address rewritten; in an ingress chain,
 *   a prerouting chain, or an input chain of an earlier priority.
 *   rcguard's own chains at a wrong hook or priority are drift and repaired.
 */
import {hostOrCidr, type ApplyResult, type DesiredState, type HookChain, type InstanceRules} from './backend.js'
import type {OwnHookRule} from './shadow/iptables.js'
import type {Shadow, ShadowStep} from './shadow/cover.js'

export {iptablesShadows, parseRule, ruleWords, type OwnHookRule, type SaveTable} from './shadow/iptables.js'
export {nftShadows, type OwnNftChains} from './shadow/nftables.js'
export type {Shadow, ShadowKind, ShadowStep} from './shadow/cover.js'

// ---------------------------------------------------------------- reports

/** Whether a finding concerns blocks in force or to come (a warning), or only a latent case (a note for --verbose). */
export function isWarning(s: Shadow): boolean {
  return s.sources.length === 0 || (s.through !== null && s.through.length > 0)
}

function label(group: Shadow[]): string {
  const families = [...new Set(group.map((g) => g.family))].sort()
  const tool = group[0]?.tool === 'nft' ? 'nftables' : (group[0]?.tool ?? '')
  return `${families.map((f) => `IPv${f}`).join(' and ')} (${tool})`
}

function what(s: Shadow): string {
  const from = s.sources.length === 0 ? '' : ` ${s.sources.join(' and ')}`
  switch (s.kind) {
    case 'accept':
      return `accepts ${s.ports}${from}`
    case 'established':
      return `accepts packets of connections already open (conntrack ESTABLISHED/RELATED) on ${s.ports}${from}`
    case 'return':
      return `returns ${s.ports}${from} (${s.detail ?? 'the policy applies'})`
    case 'goto':
      return `goes to another chain with ${s.ports}${from} and does not come back (${s.detail ?? 'the policy applies'})`
    case 'queue':
      return `hands ${s.ports}${from} to a program (NFQUEUE), whose "accept" skips the rest of the chain,`
    case 'unreached':
      return 'never reaches DOCKER-USER, where rcguard\'s rules are,'
    case 'port':
      return `changes the destination of ${s.ports}${from} to ${s.detail ?? 'a port rcguard cannot see here'}`
    case 'forward':
      return `sends ${s.ports}${from} on to another address (destination NAT)`
    case 'source':
      return `changes the source address on ${s.ports}${from}`
  }
}

function consequence(s: Shadow): string {
  if (s.kind === 'established') return 'a blocked address keeps the connections it has open, and one kept alive can go on trying passwords'
  if (s.kind === 'unreached') return 'no block there holds'
  if (s.sources.length === 0) return 'blocked addresses get through'
  const n = s.through?.length ?? 0
  const few = (s.through ?? []).slice(0, 3).map(hostOrCidr).join(', ')
  return `${n} blocked network(s) there get through (${few}${n > 3 ? ', ...' : ''})`
}

/** How a finding's rules are named: where the first is and what it says, and the one that decides. */
function named(s: Shadow): string {
  const head = s.path[0]
  const tail = s.path[s.path.length - 1]
  if (head === undefined || tail === undefined) return 'a rule'
  const show = (step: ShadowStep) => (step.rule === '' ? step.where : `${step.where} "${step.rule}"`)
  return head === tail ? show(head) : `${show(head)} (through ${show(tail)})`
}

function passes(s: Shadow, instances: string[]): string {
  return s.tool === 'nft' ? `before ${s.ours.where} sees the packets (instance ${instances.join(', ')})` : `before rcguard's rules for ${instances.join(', ')}`
}

/** What the admin can do about one finding. */
function advice(s: Shadow): string {
  if (s.tool === 'nft') {
    if (s.kind === 'port') {
      return `what to do: rcguard matches the port a packet has when its chain sees it: add ${s.detail ?? 'the port the packets are changed to'} to instance ${s.instance}'s ports, or remove the rewrite`
    }
    if (s.kind === 'forward') {
      return 'what to do: if Roundcube is behind this translation (in a container), guard forwarded traffic too: firewall.chains: [INPUT, DOCKER-USER] (or FORWARD) matches before the translation'
    }
    return 'what to do: remove the rewrite, or make it leave blocked sources alone'
  }
  if (s.kind === 'unreached') return 'what to do: start Docker (it puts "-A FORWARD -j DOCKER-USER" first in FORWARD), or guard FORWARD instead of DOCKER-USER'
  const del = `${s.tool} -D ${s.ours.rule.replace(/^-A /, '')}`
  const whitelist = s.sources.length > 0 ? "; if the addresses it lets in are meant to get in whatever rcguard decides, add them to rcguard's whitelist instead" : ''
  return `what to do: put rcguard's rule first again: "${del}", then "rcguard hacks", which puts a missing rule back at the top of its chain; and have whatever added ${s.path[0]?.where ?? 'that rule'} append its rules (-A) rather than insert them (-I), or run it before rcguard${whitelist}`
}

/**
 * Warnings (one line each, told on every run) and notes (for --verbose)
 * from the findings: one warning per shadowing rule and kind, naming the
 * instances whose rules it passes by; a note per rcguard rule passed by,
 * and what to do.
 */
export function shadowReport(shadows: Shadow[]): {warnings: string[]; notes: string[]} {
  const warnings: string[] = []
  const notes: string[] = []
  const groups = new Map<string, Shadow[]>()
  for (const s of shadows) {
    // The same rule seen for both families (an nft inet table) is one finding; iptables and ip6tables rules are two.
    const k = [s.tool, s.kind, isWarning(s), ...s.path.flatMap((p) => [p.where, p.rule])].join('\u0000')
    groups.set(k, [...(groups.get(k) ?? []), s])
  }
  for (const group of groups.values()) {
    const s = group[0]
    if (s === undefined) continue
    const instances = [...new Set(group.map((g) => g.instance))]
    const head = `${label(group)}: ${named(s)} ${what(s)} ${passes(s, instances)}`
    if (isWarning(s)) {
      const per = [...new Set(group.map((g) => (instances.length === 1 ? consequence(g) : `${g.instance}: ${consequence(g)}`)))]
      warnings.push(`${head}: ${per.join('; ')} (rcguard hacks --verbose says what to do)`)
    } else {
      notes.push(`${head}: no blocked address is ${s.through === null ? 'known to be ' : ''}there now, but one blocked later would get through`)
    }
    for (const g of group) {
      const ours = g.ours.rule === '' ? g.ours.where : `${g.ours.where} "${g.ours.rule}"`
      notes.push(`shadowed: ${label([g])}: ${ours} (for ${g.instance}) comes after ${named(g)}, which ${what(g)} first`)
    }
    notes.push(advice(s))
  }
  return {warnings, notes}
}

/** rcguard's hook rules per instance and hook chain, as a backend spells them. */
export function ownHooks(desired: DesiredState, chains: HookChain[], rules: (hook: HookChain, inst: InstanceRules) => string[]): OwnHookRule[] {
  return desired.instances.flatMap((instance) => chains.flatMap((hook) => rules(hook, instance).map((rule) => ({instance, rule}))))
}

/** The findings as the fields of an ApplyResult: warnings for every run, notes for --verbose. */
export function shadowFields(shadows: Shadow[]): Pick<ApplyResult, 'changed' | 'drift' | 'applied' | 'warnings' | 'notes'> {
  const {warnings, notes} = shadowReport(shadows)
  return {changed: false, drift: [], applied: [], ...(warnings.length > 0 ? {warnings} : {}), ...(notes.length > 0 ? {notes} : {})}
}

