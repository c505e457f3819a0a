/**
 * Reading nft's listings for ownership: the comments of tables (the mark),
 * and whether an unmarked table is exactly of the shape rcguard made before
 * it marked its tables (see Ownership in backend.ts).
 */

/**
 * The comment of every table in `nft list ruleset` text output, by "family
 * name"; null for a table without one. nft prints a table's comment among
 * the lines that follow `table FAMILY NAME {`, before its first set or chain.
 */
export function tableComments(text: string): Map<string, string | null> {
  const out = new Map<string, string | null>()
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = /^table (\S+) (\S+) \{$/.exec(lines[i] ?? '')
    if (m === null) continue
    let comment: string | null = null
    for (let j = i + 1; j < lines.length; j++) {
      const line = lines[j] ?? ''
      if (line === '}' || line.endsWith('{') || line === '') break
      const c = /^\tcomment "([^"]*)"$/.exec(line)
      if (c !== null) comment = c[1] ?? ''
    }
    out.set(`${m[1]} ${m[2]}`, comment)
  }
  return out
}

interface Payload {
  payload?: {protocol?: string; field?: string}
}

interface Match {
  match?: {op?: string; left?: Payload; right?: unknown}
}

const CHAINS: Record<string, {hook: string; prio: number}> = {
  input: {hook: 'input', prio: -10},
  prerouting: {hook: 'prerouting', prio: -150},
}

const PORT = (p: unknown): boolean => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535

/** Whether a rule's expressions are one of rcguard's: [tcp dport PORTS] (ip|ip6) saddr @SET (drop|reject). */
function ruleProblem(expr: unknown, sets: Map<string, string>, chain: string): string | null {
  if (!Array.isArray(expr)) return 'has no expressions'
  const parts = [...(expr as (Match & Record<string, unknown>)[])]
  const first = parts[0]?.match
  if (first?.left?.payload?.protocol === 'tcp' && first.left.payload.field === 'dport') {
    const right = first.right as {set?: unknown[]} | number
    const ok = PORT(right) || (typeof right === 'object' && right !== null && Array.isArray(right.set) && right.set.length > 0 && right.set.every(PORT))
    if (first.op !== '==' || !ok) return 'matches tcp ports in a way rcguard does not'
    parts.shift()
  }
  const m = parts[0]?.match
  const proto = m?.left?.payload?.protocol
  if (m?.op !== '==' || m.left?.payload?.field !== 'saddr' || (proto !== 'ip' && proto !== 'ip6') || typeof m.right !== 'string') {
    return 'does not match a source address set'
  }
  const set = m.right.startsWith('@') ? m.right.slice(1) : ''
  if (sets.get(set) !== (proto === 'ip' ? 'ipv4_addr' : 'ipv6_addr')) return `matches ${m.right}, not one of rcguard's sets`
  const verdict = parts[1]
  const verdictOk = verdict !== undefined && ('drop' in verdict || (chain === 'input' && 'reject' in verdict))
  if (parts.length !== 2 || !verdictOk) return 'does not end in drop or reject'
  return null
}

/**
 * Why the listed table (nft -j list table) is not exactly what rcguard
 * made, or null when it is: only sets NAME_v4 / NAME_v6 of addresses, the
 * chains input (hook input, priority -10) and prerouting (hook prerouting,
 * priority -150) with policy accept, and in them only rules with a comment
 * "rcguard" and a 12-digit digest that drop or reject the traffic of one of
 * those sets, optionally on some tcp ports. Debian's `inet filter` table, a
 * firewall script's, anyone's, differs.
 */
export function nftShapeProblem(items: unknown[]): string | null {
  const sets = new Map<string, string>()
  for (const item of items) {
    const o = item as Record<string, Record<string, unknown> | undefined>
    const set = o.set
    if (set === undefined) continue
    const name = String(set.name)
    const fam = /_v([46])$/.exec(name)?.[1]
    const type = fam === '4' ? 'ipv4_addr' : fam === '6' ? 'ipv6_addr' : null
    const flags = Array.isArray(set.flags) ? (set.flags as unknown[]) : []
    const extra = Object.keys(set).filter((k) => !['family', 'name', 'table', 'type', 'handle', 'flags', 'elem'].includes(k))
    if (type === null || set.type !== type || flags.some((f) => f !== 'interval') || extra.length > 0) return `its set ${name} is not one rcguard makes`
    sets.set(name, type)
  }
  for (const item of items) {
    const o = item as Record<string, Record<string, unknown> | undefined>
    const kind = Object.keys(o)[0] ?? ''
    const body = o[kind] ?? {}
    if (kind === 'metainfo' || kind === 'table' || kind === 'set') continue
    if (kind === 'chain') {
      const want = CHAINS[String(body.name)]
      if (want === undefined || body.type !== 'filter' || body.hook !== want.hook || body.prio !== want.prio || body.policy !== 'accept') {
        return `its chain ${String(body.name)} is not one rcguard makes`
      }
      continue
    }
    if (kind === 'rule') {
      const where = `a rule in its chain ${String(body.chain)}`
      if (CHAINS[String(body.chain)] === undefined) return `${where} is not rcguard's`
      if (typeof body.comment !== 'string' || !/^rcguard [0-9a-f]{12}$/.test(body.comment)) return `${where} has no rcguard comment`
      const why = ruleProblem(body.expr, sets, String(body.chain))
      if (why !== null) return `${where} ${why}`
      continue
    }
    return `it holds a ${kind}, which rcguard never makes`
  }
  return null
}
