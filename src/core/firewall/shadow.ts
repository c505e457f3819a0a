/**
 * Whether rcguard's rules are reached: the rules of others that let a packet
 * from a blocked address past rcguard's own, found in the listings the
 * backends read anyway (iptables-save, `nft -j -t list ruleset`). Pure
 * functions: a listing and the desired state in, findings out.
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
import ipaddr from 'ipaddr.js'
import {safe} from '../../ui/format.js'
import {hostOrCidr, type ApplyResult, type DesiredState, type HookChain, type InstanceRules} from './backend.js'

// ------------------------------------------------------------------ ports

/** Sorted, disjoint, inclusive port ranges. */
type Ranges = readonly (readonly [number, number])[]

const EVERY: Ranges = [[0, 65_535]]

function normalise(ranges: (readonly [number, number])[]): Ranges {
  const sorted = [...ranges].filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0])
  const out: [number, number][] = []
  for (const [a, b] of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b)
    else out.push([a, b])
  }
  return out
}

function intersect(x: Ranges, y: Ranges): Ranges {
  const out: [number, number][] = []
  for (const [a, b] of x) for (const [c, d] of y) if (Math.max(a, c) <= Math.min(b, d)) out.push([Math.max(a, c), Math.min(b, d)])
  return normalise(out)
}

function complement(x: Ranges): Ranges {
  const out: [number, number][] = []
  let next = 0
  for (const [a, b] of x) {
    if (a > next) out.push([next, a - 1])
    next = b + 1
  }
  if (next <= 65_535) out.push([next, 65_535])
  return out
}

function isEvery(x: Ranges): boolean {
  return x.length === 1 && x[0]?.[0] === 0 && x[0][1] === 65_535
}

function portsText(x: Ranges): string {
  if (isEvery(x)) return 'every port'
  const parts = x.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`))
  return `${parts.length === 1 && x[0]?.[0] === x[0]?.[1] ? 'port' : 'ports'} ${parts.join(', ')}`
}

/** iptables-save's port list: `443`, `80,443`, `1024:65535`, `:1023`. */
function parsePorts(text: string): Ranges {
  const out: [number, number][] = []
  for (const part of text.split(',')) {
    const [lo, hi] = part.includes(':') ? part.split(':') : [part, part]
    const a = lo === '' || lo === undefined ? 0 : Number(lo)
    const b = hi === '' || hi === undefined ? 65_535 : Number(hi)
    // A service name or anything odd: it could be any port.
    if (!Number.isInteger(a) || !Number.isInteger(b)) return EVERY
    out.push([a, b])
  }
  return normalise(out)
}

function guardedRanges(ports: InstanceRules['ports']): Ranges {
  return ports === 'all' ? EVERY : normalise(ports.map((p) => [p, p] as const))
}

// ---------------------------------------------------------------- sources

/** An address interval of one family. */
interface Interval {
  family: 4 | 6
  lo: bigint
  hi: bigint
}

function toBig(bytes: number[]): bigint {
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  return n
}

function address(text: string): {family: 4 | 6; n: bigint} | null {
  if (!ipaddr.isValid(text)) return null
  const a = ipaddr.parse(text)
  return {family: a.kind() === 'ipv4' ? 4 : 6, n: toBig(a.toByteArray())}
}

/** `192.0.2.0/24`, `2001:db8::/64` or a bare address as an interval; null when it is neither. */
function cidrInterval(text: string): Interval | null {
  const [addr = '', len] = text.split('/')
  const a = address(addr)
  if (a === null) return null
  const bits = a.family === 4 ? 32 : 128
  const prefix = len === undefined ? bits : Number(len)
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) return null
  const host = (1n << BigInt(bits - prefix)) - 1n
  return {family: a.family, lo: a.n & ~host, hi: a.n | host}
}

function rangeInterval(lo: string, hi: string): Interval | null {
  const a = address(lo)
  const b = address(hi)
  return a === null || b === null || a.family !== b.family ? null : {family: a.family, lo: a.n, hi: b.n}
}

/** A condition on the source address: in (or, negated, outside) known intervals, or in something rcguard cannot see into. */
type Source = {text: string; negated: boolean; intervals: Interval[]} | {text: string; unknown: true}

function sourceText(s: Source): string {
  return 'unknown' in s ? s.text : `${s.negated ? 'outside ' : 'from '}${s.text}`
}

/**
 * The blocked networks the source conditions let through: every one for
 * none, null when a condition cannot be judged here (a foreign set).
 */
function affected(blocked: string[], sources: Source[]): string[] | null {
  if (sources.some((s) => 'unknown' in s)) return null
  const known = sources as Extract<Source, {intervals: Interval[]}>[]
  return blocked.filter((net) => {
    const b = cidrInterval(net)
    if (b === null) return false
    return known.every((s) => {
      const same = s.intervals.filter((i) => i.family === b.family)
      return s.negated ? !same.some((i) => i.lo <= b.lo && b.hi <= i.hi) : same.some((i) => i.lo <= b.hi && b.lo <= i.hi)
    })
  })
}

// ------------------------------------------------------------------ cover

/** What packets a rule (or a chain of jumps) can match, as far as rcguard's guarded traffic goes. */
interface Cover {
  /** Destination ports it can match (EVERY when it does not look at them). */
  ports: Ranges
  /** Whether it can match tcp, and other protocols (these matter for an instance guarding every port). */
  tcp: boolean
  other: boolean
  sources: Source[]
  /** Only packets of connections already open (conntrack ESTABLISHED, RELATED). */
  established: boolean
  /** Packets from elsewhere can never match (`-i lo`, a local source, a loopback destination). */
  never: boolean
  /** Only the family it can match, in tables of both (nft inet). */
  family?: 4 | 6
}

function anything(): Cover {
  return {ports: EVERY, tcp: true, other: true, sources: [], established: false, never: false}
}

function both(a: Cover, b: Cover): Cover {
  const family = a.family ?? b.family
  return {
    ports: intersect(a.ports, b.ports),
    tcp: a.tcp && b.tcp,
    other: a.other && b.other,
    sources: [...a.sources, ...b.sources],
    established: a.established || b.established,
    never: a.never || b.never || (a.family !== undefined && b.family !== undefined && a.family !== b.family),
    ...(family === undefined ? {} : {family}),
  }
}

/** The guarded ports of an instance this cover reaches, or null when it reaches none. */
function reached(cover: Cover, ports: InstanceRules['ports'], fam: 4 | 6): Ranges | null {
  if (cover.never || (cover.family !== undefined && cover.family !== fam)) return null
  if (ports === 'all') return cover.tcp || cover.other ? cover.ports : null
  if (!cover.tcp) return null
  const hit = intersect(cover.ports, guardedRanges(ports))
  return hit.length === 0 ? null : hit
}

/** Whether a cover restricts nothing rcguard cares about (the rule matches every packet). */
function unrestricted(c: Cover): boolean {
  return isEvery(c.ports) && c.tcp && c.other && c.sources.length === 0 && !c.established && !c.never && c.family === undefined
}

// -------------------------------------------------------------- findings

export type ShadowKind =
  /** ACCEPT (or a chain jumped to that accepts). */
  | 'accept'
  /** ACCEPT of packets of open connections only. */
  | 'established'
  /** RETURN from the hook chain: its policy ACCEPT, or the rest of FORWARD after DOCKER-USER. */
  | 'return'
  /** A goto from the hook chain: packets do not come back to it. */
  | 'goto'
  /** NFQUEUE: a program's verdict "accept" skips the rest of the chain. */
  | 'queue'
  /** FORWARD does not jump to DOCKER-USER: rcguard's rules there are never reached. */
  | 'unreached'
  /** The destination port rewritten to one rcguard does not guard, before its chain. */
  | 'port'
  /** The packet sent on to another address before rcguard's input chain. */
  | 'forward'
  /** The source address rewritten before rcguard's chain. */
  | 'source'

export interface ShadowStep {
  /** Where the rule is: `INPUT rule 3`, `chain natpre in table ip nat (hook prerouting priority -100), handle 5`. */
  where: string
  /** The rule in its tool's spelling (iptables-save), or what it does (nft). */
  rule: string
}

export interface Shadow {
  tool: 'iptables' | 'ip6tables' | 'nft'
  family: 4 | 6
  kind: ShadowKind
  /** Outermost first: the rule in the hook chain, then the rules its jumps lead to; the last decides. */
  path: ShadowStep[]
  instance: string
  /** rcguard's rule (or chain) that the packets pass by, and where it is. */
  ours: ShadowStep
  /** The guarded ports concerned, as text (`port 443`, `every port`). */
  ports: string
  /** The source conditions of the path, as text; empty when it takes every source. */
  sources: string[]
  /** The blocked networks it lets through now: all of them when `sources` is empty; null when it cannot be known. */
  through: string[] | null
  /** Kind-specific detail (the new port, the policy). */
  detail?: string
}

// --------------------------------------------------------------- iptables

/** The parts of an iptables filter table this check reads (see parseSave in iptables.ts). */
export interface SaveTable {
  chains: Set<string>
  rules: Map<string, string[]>
  /** Built-in chains' policies (`ACCEPT`, `DROP`); a user chain has none. */
  policies?: Map<string, string>
}

/** One of rcguard's hook rules, exactly as iptables-save spells it, and the instance it serves. */
export interface OwnHookRule {
  instance: InstanceRules
  rule: string
}

/** The words of an iptables-save rule line; quoted words (comments) unquoted. */
export function ruleWords(line: string): string[] {
  const out: string[] = []
  let i = 0
  while (i < line.length) {
    while (line[i] === ' ') i++
    if (i >= line.length) break
    let word = ''
    if (line[i] === '"') {
      i++
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) i++
        word += line[i]
        i++
      }
      i++
    } else {
      while (i < line.length && line[i] !== ' ') word += line[i++]
    }
    out.push(word)
  }
  return out
}

const BLOCKING = new Set(['DROP', 'REJECT', 'TARPIT'])

interface ParsedRule {
  cover: Cover
  /** -j target (ACCEPT, DROP, a chain, ...), or null. */
  jump: string | null
  goto: string | null
}

/** What an iptables-save rule line matches and does. */
export function parseRule(line: string, forwarding: boolean): ParsedRule {
  const w = ruleWords(line)
  const c = anything()
  let jump: string | null = null
  let go: string | null = null
  let negated = false
  for (let i = 2; i < w.length; i++) {
    const word = w[i] ?? ''
    const next = w[i + 1] ?? ''
    if (word === '!') {
      negated = true
      continue
    }
    switch (word) {
      case '-j':
      case '--jump':
        jump = next
        i = w.length // the rest are the target's options
        break
      case '-g':
      case '--goto':
        go = next
        i++
        break
      case '-s':
      case '--source':
      case '--ctorigsrc': {
        const iv = next.split(',').map(cidrInterval)
        c.sources.push(iv.every((x) => x !== null) ? {text: next, negated, intervals: iv as Interval[]} : {text: `from ${next}`, unknown: true})
        i++
        break
      }
      case '--src-range': {
        const [lo = '', hi = ''] = next.split('-')
        const iv = rangeInterval(lo, hi)
        c.sources.push(iv === null ? {text: `from ${next}`, unknown: true} : {text: next, negated, intervals: [iv]})
        i++
        break
      }
      case '--match-set': {
        const flags = w[i + 2] ?? ''
        if (flags.split(',')[0] === 'src') c.sources.push({text: `${negated ? 'outside' : 'from'} set ${next}`, unknown: true})
        i += 2
        break
      }
      case '--mac-source':
        c.sources.push({text: `${negated ? 'not ' : ''}from MAC ${next}`, unknown: true})
        i++
        break
      case '-d':
      case '--destination': {
        const d = cidrInterval(next)
        const loop = d !== null && (d.family === 4 ? d.lo >> 24n === 127n && d.hi >> 24n === 127n : d.lo === 1n && d.hi === 1n)
        if (loop && !negated) c.never = true
        i++
        break
      }
      case '-i':
      case '--in-interface':
        if (next === 'lo' && !negated) c.never = true
        i++
        break
      case '-p':
      case '--protocol': {
        const p = next.toLowerCase()
        const any = p === 'all' || p === '0'
        const tcp = p === 'tcp' || p === '6'
        if (!any) {
          c.tcp = negated ? !tcp : tcp
          c.other = negated ? true : !tcp
        }
        i++
        break
      }
      case '-f':
      case '--fragment':
        // Later fragments carry no tcp header; the first one meets rcguard's rule and without it nothing is reassembled.
        if (!negated) c.never = true
        break
      case '--dport':
      case '--destination-port':
      case '--dports':
      case '--destination-ports':
        // In the forwarding chains the port is the one after Docker's DNAT: any guarded port may have become it.
        if (!forwarding) c.ports = intersect(c.ports, negated ? complement(parsePorts(next)) : parsePorts(next))
        i++
        break
      case '--ctorigdstport':
        c.ports = intersect(c.ports, negated ? complement(parsePorts(next)) : parsePorts(next))
        i++
        break
      case '--ctstate':
      case '--state': {
        const states = new Set(next.split(','))
        const all = ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED', 'SNAT', 'DNAT']
        const allowed = negated ? all.filter((s) => !states.has(s)) : [...states]
        // A connection starts NEW (or UNTRACKED where raw's NOTRACK runs); SNAT/DNAT are NEW ones translated.
        if (!allowed.some((s) => s === 'NEW' || s === 'UNTRACKED' || s === 'DNAT' || s === 'SNAT')) {
          if (allowed.some((s) => s === 'ESTABLISHED' || s === 'RELATED')) c.established = true
          else c.never = true
        }
        i++
        break
      }
      case '--src-type':
        if (!negated && next.split(',').every((t) => t === 'LOCAL')) c.never = true
        i++
        break
      default:
        break
    }
    negated = false
  }
  return {cover: c, jump, goto: go}
}

function ruleLabel(line: string): string {
  return safe(line, 400)
}

interface Walk {
  table: SaveTable
  fam: 4 | 6
  forwarding: boolean
  isOurs: (rule: string) => boolean
  /** The hook chain is a user chain (DOCKER-USER): a RETURN goes back to FORWARD, past rcguard's rule. */
  userHook: boolean
  policy: string
}

interface Found {
  kind: ShadowKind
  path: ShadowStep[]
  cover: Cover
  detail?: string
}

/** The rules in `rules` (a prefix of the hook chain, or a whole chain jumped to) that let packets past rcguard's. */
function walk(ctx: Walk, chain: string, rules: string[], inherited: Cover, path: ShadowStep[], callee: boolean, depth: number): Found[] {
  const found: Found[] = []
  for (const [index, rule] of rules.entries()) {
    if (ctx.isOurs(rule)) continue
    const p = parseRule(rule, ctx.forwarding)
    const cover = both(inherited, p.cover)
    if (cover.never || (!cover.tcp && !cover.other) || cover.ports.length === 0) continue
    const here = [...path, {where: `${chain} rule ${index + 1}`, rule: ruleLabel(rule)}]
    const target = p.goto ?? p.jump
    if (target === null) continue
    if (target === 'ACCEPT') {
      found.push({kind: cover.established ? 'established' : 'accept', path: here, cover})
    } else if (target === 'NFQUEUE' || target === 'QUEUE') {
      found.push({kind: 'queue', path: here, cover})
    } else if (target === 'RETURN') {
      if (!callee && (ctx.userHook || ctx.policy === 'ACCEPT')) {
        found.push({kind: 'return', path: here, cover, detail: ctx.userHook ? 'the rest of FORWARD decides' : `the policy ${ctx.policy} of ${chain} applies`})
      }
      // Nothing after an unconditional RETURN runs.
      if (unrestricted(p.cover)) break
    } else if (ctx.table.chains.has(target) && depth < 16) {
      found.push(...walk(ctx, target, ctx.table.rules.get(target) ?? [], cover, here, true, depth + 1))
      if (p.goto !== null && !callee && (ctx.userHook || ctx.policy === 'ACCEPT')) {
        found.push({kind: 'goto', path: here, cover, detail: ctx.userHook ? 'the rest of FORWARD decides' : `at its end the policy ${ctx.policy} of ${chain} applies`})
      }
      if (p.goto !== null && unrestricted(p.cover)) break
    } else if (BLOCKING.has(target) && unrestricted(p.cover)) {
      break
    }
  }
  return found
}

/**
 * The foreign rules that let packets past rcguard's hook rules in one
 * family's filter table. A hook rule that is missing is put at the top of
 * its chain by this run, so nothing shadows it.
 */
export function iptablesShadows(table: SaveTable, fam: 4 | 6, hooks: OwnHookRule[], isOurs: (rule: string) => boolean): Shadow[] {
  const tool = fam === 4 ? 'iptables' : 'ip6tables'
  const out: Shadow[] = []
  for (const hook of hooks) {
    const chain = hook.rule.split(' ')[1] ?? ''
    const live = table.rules.get(chain) ?? []
    const at = live.indexOf(hook.rule)
    if (at === -1 || !table.chains.has(chain)) continue
    // The packets rcguard's rule is for: its ports and protocol (its own set is not a condition on the others).
    const own = {...parseRule(hook.rule, false).cover, sources: []}
    const inst = hook.instance
    const ours = {where: `${chain} rule ${at + 1}`, rule: ruleLabel(hook.rule)}
    const blocked = fam === 4 ? inst.v4 : inst.v6
    const forwarding = chain !== 'INPUT'
    const found: Found[] = []
    const policy = table.policies?.get(chain) ?? 'ACCEPT'
    if (chain === 'DOCKER-USER') {
      // DOCKER-USER is reached from FORWARD: the rules above that jump come first.
      const forward = table.rules.get('FORWARD') ?? []
      const jump = forward.findIndex((r) => / -j DOCKER-USER$/.test(r) || / -j DOCKER-USER /.test(r))
      if (jump === -1) {
        found.push({kind: 'unreached', path: [{where: 'FORWARD', rule: 'no rule jumps to DOCKER-USER'}], cover: anything()})
      } else {
        const fctx: Walk = {table, fam, forwarding: true, isOurs, userHook: false, policy: table.policies?.get('FORWARD') ?? 'ACCEPT'}
        found.push(...walk(fctx, 'FORWARD', forward.slice(0, jump), own, [], false, 0))
      }
    }
    const ctx: Walk = {table, fam, forwarding, isOurs, userHook: chain === 'DOCKER-USER', policy}
    found.push(...walk(ctx, chain, live.slice(0, at), own, [], false, 0))
    for (const f of found) {
      const ports = f.kind === 'unreached' ? guardedRanges(inst.ports) : reached(f.cover, inst.ports, fam)
      if (ports === null) continue
      const sources = f.cover.sources
      out.push({
        tool,
        family: fam,
        kind: f.kind,
        path: f.path,
        instance: inst.name,
        ours,
        ports: `${inst.ports === 'all' ? '' : 'tcp '}${portsText(ports)}`,
        sources: sources.map(sourceText),
        through: sources.length === 0 ? blocked : affected(blocked, sources),
        ...(f.detail === undefined ? {} : {detail: f.detail}),
      })
    }
  }
  return out
}

// ---------------------------------------------------------------- nftables

/** rcguard's nftables chains: the table and each chain's hook and priority. */
export interface OwnNftChains {
  table: string
  chains: {name: string; hook: 'input' | 'prerouting'; priority: number}[]
}

type Json = Record<string, unknown>

function obj(x: unknown): Json | null {
  return x !== null && typeof x === 'object' && !Array.isArray(x) ? (x as Json) : null
}

/** nft -j's port value: a number, a range, a set of them; null when it cannot be read (a named set, a map). */
function nftPorts(v: unknown): Ranges | null {
  if (typeof v === 'number') return [[v, v]]
  const o = obj(v)
  if (o?.range !== undefined && Array.isArray(o.range)) {
    const [a, b] = o.range as unknown[]
    return typeof a === 'number' && typeof b === 'number' ? normalise([[a, b]]) : null
  }
  if (o?.set !== undefined && Array.isArray(o.set)) {
    const parts = (o.set as unknown[]).map(nftPorts)
    return parts.every((p) => p !== null) ? normalise((parts as Ranges[]).flatMap((p) => [...p])) : null
  }
  return null
}

function nftAddresses(v: unknown): Interval[] | null {
  if (typeof v === 'string') {
    const i = cidrInterval(v)
    return i === null ? null : [i]
  }
  const o = obj(v)
  const prefix = obj(o?.prefix)
  if (prefix !== null) {
    const i = cidrInterval(`${String(prefix.addr)}/${String(prefix.len)}`)
    return i === null ? null : [i]
  }
  if (o?.range !== undefined && Array.isArray(o.range)) {
    const [a, b] = o.range as unknown[]
    const i = rangeInterval(String(a), String(b))
    return i === null ? null : [i]
  }
  if (o?.set !== undefined && Array.isArray(o.set)) {
    const parts = (o.set as unknown[]).map(nftAddresses)
    return parts.every((p) => p !== null) ? (parts as Interval[][]).flat() : null
  }
  return null
}

function text(v: unknown): string {
  if (typeof v === 'string' || typeof v === 'number') return String(v)
  const o = obj(v)
  const prefix = obj(o?.prefix)
  if (prefix !== null) return `${String(prefix.addr)}/${String(prefix.len)}`
  if (o?.range !== undefined && Array.isArray(o.range)) return (o.range as unknown[]).map(text).join('-')
  if (o?.set !== undefined && Array.isArray(o.set)) return `{ ${(o.set as unknown[]).map(text).join(', ')} }`
  return 'an expression'
}

const TCP_NAMES = new Set(['tcp', 6, '6'])

/** What one match expression of an nft rule restricts. */
function nftMatch(c: Cover, m: Json): void {
  const op = typeof m.op === 'string' ? m.op : '=='
  const negated = op === '!='
  const left = obj(m.left)
  const right = m.right
  const payload = obj(left?.payload)
  const meta = obj(left?.meta)
  const ct = obj(left?.ct)
  if (payload !== null) {
    const proto = String(payload.protocol)
    const field = String(payload.field)
    if (proto === 'ip' || proto === 'ip6') c.family = proto === 'ip' ? 4 : 6
    if ((proto === 'tcp' || proto === 'th') && field === 'dport') {
      if (proto === 'tcp') c.other = false
      const ports = nftPorts(right)
      if (ports !== null && (op === '==' || op === 'in' || negated)) c.ports = intersect(c.ports, negated ? complement(ports) : ports)
    } else if (proto === 'tcp') {
      c.other = false
    } else if (['udp', 'udplite', 'sctp', 'dccp', 'icmp', 'icmpv6', 'esp', 'ah', 'comp'].includes(proto)) {
      c.tcp = false
    } else if ((proto === 'ip' && field === 'protocol') || (proto === 'ip6' && field === 'nexthdr')) {
      protocol(c, right, negated)
    } else if ((proto === 'ip' || proto === 'ip6') && field === 'saddr') {
      const iv = typeof right === 'string' && right.startsWith('@') ? null : nftAddresses(right)
      c.sources.push(iv === null ? {text: `${negated ? 'outside' : 'from'} ${text(right).startsWith('@') ? `set ${text(right).slice(1)}` : text(right)}`, unknown: true} : {text: text(right), negated, intervals: iv})
    } else if ((proto === 'ip' || proto === 'ip6') && field === 'daddr' && !negated) {
      const iv = nftAddresses(right)
      if (iv !== null && iv.every((i) => (i.family === 4 ? i.lo >> 24n === 127n && i.hi >> 24n === 127n : i.lo === 1n && i.hi === 1n))) c.never = true
    }
  } else if (meta !== null) {
    const key = String(meta.key)
    if (key === 'l4proto') protocol(c, right, negated)
    else if (key === 'nfproto' && (right === 'ipv4' || right === 'ipv6')) {
      const fam = right === 'ipv4' ? 4 : 6
      if (!negated) c.family = fam
      else c.family = fam === 4 ? 6 : 4
    } else if ((key === 'iifname' || key === 'iif') && right === 'lo' && !negated) c.never = true
  } else if (ct !== null && String(ct.key) === 'state') {
    const states = new Set((Array.isArray(right) ? right : [right]).map(String))
    const all = ['new', 'established', 'related', 'invalid', 'untracked']
    const allowed = negated ? all.filter((s) => !states.has(s)) : [...states]
    if (!allowed.some((s) => s === 'new' || s === 'untracked')) {
      if (allowed.some((s) => s === 'established' || s === 'related')) c.established = true
      else c.never = true
    }
  } else if (obj(left?.fib) !== null && String(obj(left?.fib)?.result) === 'type' && right === 'local' && !negated) {
    const flags = obj(left?.fib)?.flags
    if ((Array.isArray(flags) ? flags : [flags]).includes('saddr')) c.never = true
  }
}

function protocol(c: Cover, right: unknown, negated: boolean): void {
  const values = (obj(right)?.set !== undefined ? (obj(right)?.set as unknown[]) : [right]).map((v) => (typeof v === 'number' ? v : String(v)))
  const tcp = values.some((v) => TCP_NAMES.has(v))
  const other = values.some((v) => !TCP_NAMES.has(v))
  if (negated) {
    c.tcp &&= !tcp
  } else {
    c.tcp &&= tcp
    c.other &&= other
  }
}

interface NftRule {
  family: string
  table: string
  chain: string
  handle?: number
  comment?: string
  expr?: unknown[]
}

interface NftChain {
  family: string
  table: string
  name: string
  hook?: string
  prio?: number
}

/** What a rule's statement does to the packet that could take it past rcguard's chain; null for nothing. */
function rewrite(s: Json): {kind: ShadowKind; to: Ranges | null; what: string} | null {
  const nat = obj(s.dnat) ?? obj(s.redirect)
  if (s.dnat !== undefined || s.redirect !== undefined) {
    const word = s.dnat !== undefined ? 'dnat' : 'redirect'
    const port = nat?.port
    const addr = nat?.addr
    if (word === 'dnat' && addr !== undefined) {
      return {kind: 'forward', to: null, what: `dnat to ${text(addr)}${port === undefined ? '' : `:${text(port)}`}`}
    }
    if (port === undefined) return null
    return {kind: 'port', to: nftPorts(port), what: `${word} to :${text(port)}`}
  }
  const mangle = obj(s.mangle)
  const key = obj(obj(mangle?.key)?.payload)
  if (mangle !== null && key !== null) {
    const proto = String(key.protocol)
    const field = String(key.field)
    if ((proto === 'tcp' || proto === 'th') && field === 'dport') {
      return {kind: 'port', to: nftPorts(mangle.value), what: `${proto} dport set ${text(mangle.value)}`}
    }
    if ((proto === 'ip' || proto === 'ip6') && field === 'saddr') return {kind: 'source', to: null, what: `${proto} saddr set ${text(mangle.value)}`}
  }
  const xt = obj(s.xt)
  if (xt?.type === 'target' && (xt.name === 'DNAT' || xt.name === 'REDIRECT')) {
    // iptables-nft's target, which nft -j cannot show: where it sends the packet is unknown here.
    return xt.name === 'DNAT' ? {kind: 'forward', to: null, what: 'iptables-nft target DNAT'} : {kind: 'port', to: null, what: 'iptables-nft target REDIRECT'}
  }
  return null
}

/**
 * The foreign nftables rules that change a packet before rcguard's
 * earliest chain sees it, so that its rules no longer match it; from `nft
 * -j -t list ruleset`, whose items are passed as they are.
 */
export function nftShadows(items: unknown[], own: OwnNftChains, desired: DesiredState): Shadow[] {
  // The earliest of rcguard's chains on a packet's way in: what it drops, the later ones never see.
  const first = [...own.chains].sort((a, b) => (a.hook === b.hook ? a.priority - b.priority : a.hook === 'prerouting' ? -1 : 1))[0]
  if (first === undefined) return []
  const chains: NftChain[] = []
  const rules = new Map<string, NftRule[]>()
  const key = (family: string, table: string, chain: string) => `${family}\u0000${table}\u0000${chain}`
  for (const item of items) {
    const o = obj(item)
    const chain = obj(o?.chain) as NftChain | null
    const rule = obj(o?.rule) as NftRule | null
    if (chain !== null) chains.push(chain)
    if (rule !== null) {
      const k = key(rule.family, rule.table, rule.chain)
      rules.set(k, [...(rules.get(k) ?? []), rule])
    }
  }
  const before = (c: NftChain): boolean => {
    if ((c.family === 'inet' && c.table === own.table) || !['ip', 'ip6', 'inet', 'netdev'].includes(c.family) || c.hook === undefined) return false
    const prio = typeof c.prio === 'number' ? c.prio : 0
    if (c.hook === 'ingress') return true
    if (c.hook === 'prerouting') return first.hook === 'input' || prio <= first.priority
    return c.hook === 'input' && first.hook === 'input' && prio <= first.priority
  }
  const found: {path: ShadowStep[]; cover: Cover; change: NonNullable<ReturnType<typeof rewrite>>}[] = []
  const visit = (c: NftChain, where: string, inherited: Cover, path: ShadowStep[], depth: number): void => {
    for (const rule of rules.get(key(c.family, c.table, c.name)) ?? []) {
      let change: ReturnType<typeof rewrite> = null
      let next: string | null = null
      let stops = false
      const mine = anything()
      for (const e of rule.expr ?? []) {
        const s = obj(e)
        if (s === null) continue
        const m = obj(s.match)
        if (m !== null) nftMatch(mine, m)
        change ??= rewrite(s)
        const jump = obj(s.jump) ?? obj(s.goto)
        if (jump !== null && typeof jump.target === 'string') next = jump.target
        if ('accept' in s || 'drop' in s || 'reject' in s) stops = true
      }
      const cover = both(inherited, mine)
      const comment = rule.comment === undefined ? '' : ` (comment: ${rule.comment})`
      const step = (does: string) => ({where: `${where}, handle ${rule.handle ?? '?'}`, rule: safe(`${does}${comment}`, 400)})
      if (change !== null) found.push({path: [...path, step(change.what)], cover, change})
      if (next !== null && depth < 16) {
        visit({family: c.family, table: c.table, name: next}, `chain ${next} in table ${c.family} ${c.table}`, cover, [...path, step(`jump ${next}`)], depth + 1)
      }
      // A verdict for every packet ends the chain: nothing after it is reached.
      if (stops && unrestricted(mine)) break
    }
  }
  for (const c of chains.filter(before)) {
    const start = anything()
    if (c.family === 'ip') start.family = 4
    if (c.family === 'ip6') start.family = 6
    visit(c, `chain ${c.name} in table ${c.family} ${c.table} (hook ${c.hook ?? '?'} priority ${c.prio ?? 0})`, start, [], 0)
  }
  const ours = {where: `rcguard's chain ${first.name} (hook ${first.hook} priority ${first.priority})`, rule: ''}
  const out: Shadow[] = []
  for (const f of found) {
    for (const fam of [4, 6] as const) {
      for (const inst of desired.instances) {
        const ports = reached(f.cover, inst.ports, fam)
        if (ports === null) continue
        const guarded = guardedRanges(inst.ports)
        // A port rewritten to a guarded one is still caught; for an instance guarding every port, ports do not matter.
        if (f.change.kind === 'port' && (inst.ports === 'all' || (f.change.to !== null && within(f.change.to, guarded)))) continue
        // Before rcguard's prerouting chain nothing sends a packet elsewhere (destination NAT comes later, at -100).
        if (f.change.kind === 'forward' && first.hook === 'prerouting') continue
        const blocked = fam === 4 ? inst.v4 : inst.v6
        out.push({
          tool: 'nft',
          family: fam,
          kind: f.change.kind,
          path: f.path,
          instance: inst.name,
          ours,
          ports: `${inst.ports === 'all' ? '' : 'tcp '}${portsText(ports)}`,
          sources: f.cover.sources.map(sourceText),
          through: f.cover.sources.length === 0 ? blocked : affected(blocked, f.cover.sources),
          ...(f.change.to === null ? {} : {detail: portsText(f.change.to)}),
        })
      }
    }
  }
  return out
}

/** Whether every port of `a` is in `b`. */
function within(a: Ranges, b: Ranges): boolean {
  const i = intersect(a, b)
  return i.length === a.length && i.every(([x, y], n) => x === a[n]?.[0] && y === a[n]?.[1])
}

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
