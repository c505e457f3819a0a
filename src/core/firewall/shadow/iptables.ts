/**
 * The shadowing check for iptables and ip6tables (legacy or nft), over the
 * filter table iptables-save printed: the rules above rcguard's hook rule,
 * in its chain (and for DOCKER-USER in FORWARD before the jump to it), that
 * end the chain for packets rcguard's rule is for.
 */
import {escapeText} from '../../text/escape.js'
import {anything, both, cidrInterval, complement, guardedRanges, intersect, parsePorts, portsText, rangeInterval, reached, sourceText, affected, unrestricted, type Cover, type Interval, type Shadow, type ShadowKind, type ShadowStep} from './cover.js'
import type {InstanceRules} from '../backend.js'

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
  return escapeText(line, {max: 400})
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

