/**
 * Turning core results into text for a terminal or cron mail; the list
 * table is list-output.ts.
 */
import type {Decision} from '../core/decisions/decide.js'
import {escapeText} from '../core/text/escape.js'
import type {AccountAlert} from '../core/decisions/accounts.js'
import type {BlockInfo} from '../core/run/context.js'
import type {ScanResult} from '../core/run/pipeline.js'
import {ruleText, windowsOf, type WindowSetting} from '../core/decisions/windows.js'

export function time(t: number | string | null): string {
  if (t === null) return '-'
  const d = typeof t === 'number' ? new Date(t) : new Date(t)
  return d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')
}

export function until(b: {blockedUntil: number | null}): string {
  return b.blockedUntil === null ? 'until deleted' : `until ${time(b.blockedUntil)}`
}

/** Attacker-controlled text (user names, log lines) shown safely on one line, at most `max` characters. */
export function safe(text: string, max = 64): string {
  return escapeText(text, {max})
}

/** The last line of block, unblock and whitelist: whether the firewall changed, and whether its rules are bypassed. */
export function firewallLine(changed: boolean, warnings: string[]): string {
  const line = changed ? 'firewall updated' : 'firewall unchanged'
  return warnings.length === 0 ? line : `${line}, but rules of others let packets past rcguard's (see the warnings)`
}

/**
 * What a run that changed the firewall without a block made or ended did:
 * set the rules up (first run, after rcguard flush, enabled again) or
 * corrected drift (each difference named).
 */
export function firewallChangeLine(fw: {backend: string; drift: string[]; cause?: 'first' | 'after-flush' | 're-enabled'}): string {
  if (fw.cause === 'first') return `firewall rules set up (${fw.backend}): the first run with this database`
  if (fw.cause === 'after-flush') return `firewall rules set up again (${fw.backend}) after rcguard flush`
  if (fw.cause === 're-enabled') return `firewall rules set up again (${fw.backend}): rcguard is enabled again`
  return `firewall rules corrected: ${fw.drift.join('; ')}`
}

export function blockLine(b: BlockInfo): string {
  const by = b.rule === undefined || b.rule === 'hand' ? '' : ` by ${ruleText(b.rule)}`
  // The failures that caused this block (not the entry's lifetime count); a network's swarm has none of its own.
  const n = b.failures ?? b.attempts
  const parts = [...(n > 0 ? [`${n} failed login${n === 1 ? '' : 's'}`] : []), ...(b.lastUser !== '' ? [`last user "${safe(b.lastUser)}"`] : [])]
  return `blocked ${b.ip} on ${b.instance} ${until(b)}${by}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}`
}

/** An account reported under attack (accountAlert): its name is attacker text, escaped. */
export function accountLine(a: AccountAlert, periodMinutes: number): string {
  return `account "${safe(a.account)}" on ${a.instance} under attack: ${a.addresses} addresses failed on it within ${periodMinutes} min (first failure ${time(a.first)}, latest ${time(a.last)})`
}

/** An account alert in --json: times in ISO 8601, the name with JSON's own escapes (as every --json string). */
export function accountJson(a: AccountAlert): {instance: string; account: string; addresses: number; first: string; last: string; at: string} {
  return {instance: a.instance, account: a.account, addresses: a.addresses, first: new Date(a.first).toISOString(), last: new Date(a.last).toISOString(), at: new Date(a.at).toISOString()}
}

/** A block another node of the cluster made, now held here too. */
export function heldLine(b: BlockInfo & {node: string}): string {
  const by = b.rule === undefined || b.rule === 'hand' ? ' by hand' : ` by ${ruleText(b.rule)}`
  return `holding ${b.ip} on ${b.instance} ${until(b)}: blocked on cluster node ${safe(b.node)}${by}`
}

/** A block lifted here because it was unblocked (or whitelisted) on another node. */
export function liftedLine(b: BlockInfo): string {
  return `unblocked ${b.ip} on ${b.instance}: lifted on another node of the cluster`
}

export function expiredLine(b: BlockInfo): string {
  return `unblocked ${b.ip} on ${b.instance}: its block is over`
}

export function decisionLine(d: Decision): string {
  const e = d.event
  return `${e.file}:${e.lineNo}: ${e.grammar} ${e.ip ?? '-'} "${safe(e.user)}" -> ${d.action}: ${d.why}`
}

/** --verbose: each file read, then each login line with the decision taken and why. */
export function scanReport(result: ScanResult): string[] {
  const out: string[] = []
  for (const f of result.files) {
    out.push(`${f.file}: ${f.bytes} new bytes, ${f.lines} lines, ${f.events} login events`)
    for (const n of f.notes) out.push(`  ${n}`)
  }
  for (const d of result.decisions) {
    if (d.event.text !== undefined) out.push(`  line: ${safe(d.event.text, 4096)}`)
    out.push(decisionLine(d))
  }
  return out
}

/** "in 42 min", "3 h ago": a time relative to now, for tables. */
export function relative(t: string | null, now: number): string {
  if (t === null) return '-'
  const d = Date.parse(t) - now
  const a = Math.abs(d)
  const span =
    a < 60_000 ? `${Math.round(a / 1000)} s` : a < 3_600_000 ? `${Math.round(a / 60_000)} min` : a < 172_800_000 ? `${Math.round(a / 3_600_000)} h` : `${Math.round(a / 86_400_000)} days`
  return d >= 0 ? `in ${span}` : `${span} ago`
}

/**
 * The end of a replay: how many blocks of how many addresses, with the first
 * rule's settings, then how many blocks each rule made (every configured rule,
 * those that made none too: what a window would add is as telling as what it adds).
 */
export function replaySummary(
  blocks: readonly {ip: string; rule: string}[],
  config: {maxAttempts: number; periodMinutes: number; blockMinutes: number; windows?: readonly WindowSetting[]},
): string[] {
  const out = [
    `replay: ${blocks.length} block(s) of ${new Set(blocks.map((b) => b.ip)).size} address(es) with maxAttempts ${config.maxAttempts}, periodMinutes ${config.periodMinutes}, blockMinutes ${config.blockMinutes}`,
  ]
  const w = windowsOf(config)
  const rules = [...w.failures.map((f) => f.rule), ...w.users.map((u) => u.rule)]
  for (const b of blocks) if (!rules.includes(b.rule)) rules.push(b.rule)
  if (rules.length === 1) return out
  for (const rule of rules) {
    const by = blocks.filter((b) => b.rule === rule)
    out.push(`  ${ruleText(rule)}: ${by.length} block(s) of ${new Set(by.map((b) => b.ip)).size} address(es)`)
  }
  return out
}
