/**
 * The shadowing check for nftables, over `nft -j -t list ruleset`: the
 * foreign rules that change a packet before rcguard's earliest chain sees
 * it (a foreign accept ends only its own base chain and is no bypass).
 */
import {escapeText} from '../../text/escape.js'
import {affected, anything, both, cidrInterval, complement, guardedRanges, intersect, normalise, portsText, rangeInterval, reached, sourceText, unrestricted, within, type Cover, type Interval, type Ranges, type Shadow, type ShadowKind, type ShadowStep} from './cover.js'
import type {DesiredState} from '../backend.js'

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
      const step = (does: string) => ({where: `${where}, handle ${rule.handle ?? '?'}`, rule: escapeText(`${does}${comment}`, {max: 400})})
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
