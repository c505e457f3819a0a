/**
 * What the shadowing check (shadow.ts) reasons with: port ranges, source
 * conditions, what a rule (or a chain of jumps) can match, and the findings.
 */
import ipaddr from 'ipaddr.js'
import type {InstanceRules} from '../backend.js'

/** Sorted, disjoint, inclusive port ranges. */
export type Ranges = readonly (readonly [number, number])[]

export const EVERY: Ranges = [[0, 65_535]]

export function normalise(ranges: (readonly [number, number])[]): Ranges {
  const sorted = [...ranges].filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0])
  const out: [number, number][] = []
  for (const [a, b] of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b)
    else out.push([a, b])
  }
  return out
}

export function intersect(x: Ranges, y: Ranges): Ranges {
  const out: [number, number][] = []
  for (const [a, b] of x) for (const [c, d] of y) if (Math.max(a, c) <= Math.min(b, d)) out.push([Math.max(a, c), Math.min(b, d)])
  return normalise(out)
}

export function complement(x: Ranges): Ranges {
  const out: [number, number][] = []
  let next = 0
  for (const [a, b] of x) {
    if (a > next) out.push([next, a - 1])
    next = b + 1
  }
  if (next <= 65_535) out.push([next, 65_535])
  return out
}

export function isEvery(x: Ranges): boolean {
  return x.length === 1 && x[0]?.[0] === 0 && x[0][1] === 65_535
}

export function portsText(x: Ranges): string {
  if (isEvery(x)) return 'every port'
  const parts = x.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`))
  return `${parts.length === 1 && x[0]?.[0] === x[0]?.[1] ? 'port' : 'ports'} ${parts.join(', ')}`
}

/** iptables-save's port list: `443`, `80,443`, `1024:65535`, `:1023`. */
export function parsePorts(text: string): Ranges {
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

export function guardedRanges(ports: InstanceRules['ports']): Ranges {
  return ports === 'all' ? EVERY : normalise(ports.map((p) => [p, p] as const))
}

// ---------------------------------------------------------------- sources

/** An address interval of one family. */
export interface Interval {
  family: 4 | 6
  lo: bigint
  hi: bigint
}

function toBig(bytes: number[]): bigint {
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  return n
}

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

function address(text: string): {family: 4 | 6; n: bigint} | null {
  // Plain dotted quads without ipaddr.js: 100,000 blocked addresses are read in a few milliseconds.
  const q = DOTTED.exec(text)
  if (q !== null) {
    const [a = 0, b = 0, c = 0, d = 0] = q.slice(1).map(Number)
    return a <= 255 && b <= 255 && c <= 255 && d <= 255 ? {family: 4, n: BigInt(a * 16_777_216 + b * 65_536 + c * 256 + d)} : null
  }
  if (!ipaddr.IPv6.isValid(text)) return null
  const a = ipaddr.parse(text)
  return {family: a.kind() === 'ipv4' ? 4 : 6, n: toBig(a.toByteArray())}
}

/** `192.0.2.0/24`, `2001:db8::/64` or a bare address as an interval; null when it is neither. */
export function cidrInterval(text: string): Interval | null {
  const [addr = '', len] = text.split('/')
  const a = address(addr)
  if (a === null) return null
  const bits = a.family === 4 ? 32 : 128
  const prefix = len === undefined ? bits : Number(len)
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) return null
  const host = (1n << BigInt(bits - prefix)) - 1n
  return {family: a.family, lo: a.n & ~host, hi: a.n | host}
}

export function rangeInterval(lo: string, hi: string): Interval | null {
  const a = address(lo)
  const b = address(hi)
  return a === null || b === null || a.family !== b.family ? null : {family: a.family, lo: a.n, hi: b.n}
}

/** A condition on the source address: in (or, negated, outside) known intervals, or in something rcguard cannot see into. */
export type Source = {text: string; negated: boolean; intervals: Interval[]} | {text: string; unknown: true}

export function sourceText(s: Source): string {
  return 'unknown' in s ? s.text : `${s.negated ? 'outside ' : 'from '}${s.text}`
}

/** Blocked networks as intervals, parsed once per list (100,000 blocks and several source rules). */
const parsed = new WeakMap<string[], (Interval | null)[]>()

/**
 * The blocked networks the source conditions let through: every one for
 * none, null when a condition cannot be judged here (a foreign set).
 */
export function affected(blocked: string[], sources: Source[]): string[] | null {
  if (sources.some((s) => 'unknown' in s)) return null
  const known = sources as Extract<Source, {intervals: Interval[]}>[]
  let intervals = parsed.get(blocked)
  if (intervals === undefined) {
    intervals = blocked.map(cidrInterval)
    parsed.set(blocked, intervals)
  }
  const all = intervals
  return blocked.filter((_, n) => {
    const b = all[n]
    if (b === undefined || b === null) return false
    return known.every((s) => {
      const inside = s.intervals.some((i) => i.family === b.family && i.lo <= b.lo && b.hi <= i.hi)
      return s.negated ? !inside : inside || s.intervals.some((i) => i.family === b.family && i.lo <= b.hi && b.lo <= i.hi)
    })
  })
}

// ------------------------------------------------------------------ cover

/** What packets a rule (or a chain of jumps) can match, as far as rcguard's guarded traffic goes. */
export interface Cover {
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

export function anything(): Cover {
  return {ports: EVERY, tcp: true, other: true, sources: [], established: false, never: false}
}

export function both(a: Cover, b: Cover): Cover {
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
export function reached(cover: Cover, ports: InstanceRules['ports'], fam: 4 | 6): Ranges | null {
  if (cover.never || (cover.family !== undefined && cover.family !== fam)) return null
  if (ports === 'all') return cover.tcp || cover.other ? cover.ports : null
  if (!cover.tcp) return null
  const hit = intersect(cover.ports, guardedRanges(ports))
  return hit.length === 0 ? null : hit
}

/** Whether a cover restricts nothing rcguard cares about (the rule matches every packet). */
export function unrestricted(c: Cover): boolean {
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

/** Whether every port of `a` is in `b`. */
export function within(a: Ranges, b: Ranges): boolean {
  const i = intersect(a, b)
  return i.length === a.length && i.every(([x, y], n) => x === a[n]?.[0] && y === a[n]?.[1])
}

