/**
 * `rcguard list` written as a stream: a summary (counts by state and
 * instance), then an aligned table of the first rows (--limit), or a JSON
 * array, a chunk at a time and waiting for the reader, so that a list of a
 * million entries costs time and memory in proportion to it. No table
 * library: cli-table3 laid out every row against every other (its layout is
 * quadratic, and it overflowed the stack from about 125,000 rows).
 */
import type {ChalkInstance} from 'chalk'
import type {ListCounts, ListRow} from '../core/run/admin.js'
import type {AccountRecord} from '../core/store/schema.js'
import {escapeJson} from '../core/text/escape.js'
import {relative, safe, time} from './format.js'
import {ruleShort} from '../core/decisions/windows.js'

/** Rows a terminal gets when --limit is not given. */
export const DEFAULT_LIMIT = 50

/** Loaded by the first table (writeTable): chalk's terminal detection is a cost a run that draws none need not pay. */
let chalk!: ChalkInstance

/** Rows per write. */
const CHUNK = 2000

const STATES: ListRow['state'][] = ['blocked', 'watching', 'whitelisted']

const STATE_COLOUR: Record<ListRow['state'], (s: string) => string> = {
  blocked: (s) => chalk.red(s),
  watching: (s) => chalk.yellow(s),
  whitelisted: (s) => chalk.green(s),
}

export interface Output {
  write(chunk: string): boolean
  once(event: 'drain', listener: () => void): unknown
}

async function put(out: Output, text: string): Promise<void> {
  if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', resolve))
}

/**
 * `3 blocked, 1 watching, 0 whitelisted`, and with more than one instance a
 * line per instance (`master: 2 blocked, 1 watching`).
 */
export function summaryLines(counts: ListCounts): string[] {
  const out = [STATES.map((s) => `${counts.states.get(s) ?? 0} ${s}`).join(', ')]
  if (counts.instances.size > 1) {
    for (const [name, m] of [...counts.instances].sort(([a], [b]) => a.localeCompare(b))) {
      out.push(`  ${name}: ${STATES.filter((s) => m.has(s)).map((s) => `${m.get(s)} ${s}`).join(', ')}`)
    }
  }
  return out
}

const HEAD = ['address', 'state', 'attempts', 'first seen', 'last seen', 'blocked until', 'blocked by', 'instance', 'last user / comment']

function cells(r: ListRow, now: number): string[] {
  return [
    safe(r.ip, 64),
    r.state,
    String(r.attempts),
    relative(r.firstSeen, now),
    relative(r.lastSeen, now),
    r.state === 'blocked' ? (r.blockedUntil === null ? 'until deleted' : relative(r.blockedUntil, now)) : '-',
    r.rule === null ? '-' : ruleShort(r.rule),
    r.instance ?? '-',
    r.comment !== null ? safe(r.comment, 32) : safe(r.lastUser ?? '', 32),
  ]
}

/**
 * The table of `rows`, aligned on the widest cell of each column, the state
 * coloured when chalk finds a colour terminal; written `CHUNK` rows at a time.
 * Every cell is escaped (core/text/escape.ts) before it is measured.
 */
export async function writeTable(out: Output, rows: Iterable<ListRow>, now: number): Promise<void> {
  chalk ??= (await import('chalk')).default
  const widths = HEAD.map((h) => h.length)
  // One pass to measure, one to write: the cells are made twice rather than kept, so memory stays one chunk.
  for (const r of rows) {
    const c = cells(r, now)
    for (let i = 0; i < c.length; i++) widths[i] = Math.max(widths[i] ?? 0, c[i]?.length ?? 0)
  }
  const line = (c: string[], state?: ListRow['state']): string =>
    c
      .map((cell, i) => {
        const padded = i === c.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)
        return i === 1 && state !== undefined ? STATE_COLOUR[state](cell) + padded.slice(cell.length) : padded
      })
      .join('  ')
      .trimEnd()
  const bold = chalk.level === 0 ? (s: string) => s : (s: string) => chalk.bold(s)
  let chunk = `${bold(line(HEAD))}\n`
  let i = 0
  for (const r of rows) {
    chunk += `${line(cells(r, now), r.state)}\n`
    if (++i % CHUNK === 0) {
      await put(out, chunk)
      chunk = ''
    }
  }
  if (chunk !== '') await put(out, chunk)
}

/** Whether s is printable ASCII without `"` or `\\`: JSON text of its own once quoted, the common case. */
function plain(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false
  }
  return true
}

// Each string with JSON's own escapes for what a terminal could act on (escapeJson): the rest of a row is ASCII.
const str = (s: string | null): string => (s === null ? 'null' : plain(s) ? `"${s}"` : escapeJson(JSON.stringify(s)))

/**
 * escapeJson(JSON.stringify(row)), written out: the same text
 * (test/core/codec.test.ts checks it), without walking the object's keys
 * for every row of a large list, and escaping only its strings. Times are
 * ISO 8601 text and need no escapes.
 */
export function rowJson(r: ListRow): string {
  const time = (t: string | null): string => (t === null ? 'null' : `"${t}"`)
  return (
    `{"ip":${str(r.ip)},"state":"${r.state}","instance":${str(r.instance)},"attempts":${r.attempts},` +
    `"firstSeen":${time(r.firstSeen)},"lastSeen":${time(r.lastSeen)},"blockedAt":${time(r.blockedAt)},"blockedUntil":${time(r.blockedUntil)},` +
    `"lastUser":${str(r.lastUser)},"blocks":${r.blocks},"comment":${str(r.comment)},"rule":${r.rule === null ? 'null' : `"${r.rule}"`}}`
  )
}

/** The rows as one JSON array, an element per line, with JSON's own escapes for what a terminal could act on. */
export async function writeJsonArray(out: Output, rows: Iterable<ListRow>): Promise<void> {
  let chunk = '['
  let i = 0
  for (const r of rows) {
    chunk += `${i === 0 ? '\n' : ',\n'}${rowJson(r)}`
    if (++i % CHUNK === 0) {
      await put(out, chunk)
      chunk = ''
    }
  }
  await put(out, `${chunk}${i === 0 ? '' : '\n'}]\n`)
}

const ACCOUNT_HEAD = ['account', 'instance', 'addresses', 'first failure', 'last failure', 'reported']

/** `list --accounts`: one row per account reported under attack; the name is attacker text, escaped. */
export async function writeAccountTable(out: Output, accounts: readonly AccountRecord[]): Promise<void> {
  const rows = accounts.map((a) => [safe(a.account, 64), a.instance, String(a.addresses), time(a.first), time(a.last), time(a.reportedAt)])
  const widths = ACCOUNT_HEAD.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (c: string[]): string => c.map((cell, i) => (i === c.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd()
  await put(out, `${[ACCOUNT_HEAD, ...rows].map(line).join('\n')}\n`)
}

/** `list --accounts --json`: an array, an element per line, times in ISO 8601. */
export async function writeAccountsJson(out: Output, accounts: readonly AccountRecord[]): Promise<void> {
  const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString())
  const rows = accounts.map((a) =>
    escapeJson(JSON.stringify({account: a.account, instance: a.instance, addresses: a.addresses, first: iso(a.first), last: iso(a.last), reportedAt: iso(a.reportedAt)})),
  )
  await put(out, rows.length === 0 ? '[]\n' : `[\n${rows.join(',\n')}\n]\n`)
}
