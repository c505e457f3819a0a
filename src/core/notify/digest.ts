/**
 * The digest of one run: every address blocked and released, sent as one
 * notification (never one per address). User names come from the log, so
 * from the attacker: they are escaped to one printable line before they go
 * anywhere (mail body, JSON), and the subject carries none of them.
 */
import {ruleShort} from '../decisions/windows.js'
import {escapeText} from '../text/escape.js'

/** A block as the guard reports it (BlockInfo), optionally with the users tried. */
export interface BlockLike {
  ip: string
  instance: string
  attempts: number
  lastUser: string
  blockedAt: number
  blockedUntil: number | null
  /** The user names tried, oldest first; otherwise only lastUser is known. */
  users?: string[]
  /** The rule that made the block (decisions/windows.ts); absent: not known. */
  rule?: string
}

export interface DigestBlock {
  ip: string
  instance: string
  attempts: number
  /** Users tried (at most MAX_USERS, distinct, escaped). */
  users: string[]
  /** ISO 8601. */
  blockedAt: string
  /** ISO 8601, or null: blocked until deleted. */
  blockedUntil: string | null
  /** The block's length in minutes, or null: until deleted. */
  minutes: number | null
  /** The rule that made the block (`failures:6/10`, `users:5/60`, `network:10/60`, `account:20/10`, `hand`), or null: not known. */
  rule: string | null
}

/** An account reported under attack (accountAlert): its name escaped, how many addresses failed on it, when. */
export interface DigestAccount {
  instance: string
  account: string
  addresses: number
  /** ISO 8601: the attack's first and latest failure. */
  first: string
  last: string
}

export interface AccountLike {
  instance: string
  account: string
  addresses: number
  first: number
  last: number
}

export interface Digest {
  host: string
  /** ISO 8601: when the run happened. */
  time: string
  blocked: DigestBlock[]
  released: DigestBlock[]
  /** Accounts under attack reported by this run (absent: none). */
  accounts?: DigestAccount[]
}

export const MAX_USERS = 10
export const MAX_USER_LENGTH = 64

function usersOf(b: BlockLike): string[] {
  const out: string[] = []
  for (const u of b.users ?? [b.lastUser]) {
    if (u === '') continue
    const e = escapeText(u, {max: MAX_USER_LENGTH})
    if (!out.includes(e)) out.push(e)
    if (out.length === MAX_USERS) break
  }
  return out
}

function iso(t: number): string {
  return new Date(t).toISOString()
}

function digestBlock(b: BlockLike): DigestBlock {
  return {
    ip: b.ip,
    instance: b.instance,
    attempts: b.attempts,
    users: usersOf(b),
    blockedAt: iso(b.blockedAt),
    blockedUntil: b.blockedUntil === null ? null : iso(b.blockedUntil),
    minutes: b.blockedUntil === null ? null : Math.max(0, Math.round((b.blockedUntil - b.blockedAt) / 60_000)),
    rule: b.rule ?? null,
  }
}

/** The digest of a run, or null when it neither blocked nor released anything, nor reported an account. */
export function buildDigest(input: {host: string; now: number; blocked: BlockLike[]; released: BlockLike[]; accounts?: AccountLike[]}): Digest | null {
  const accounts = input.accounts ?? []
  if (input.blocked.length === 0 && input.released.length === 0 && accounts.length === 0) return null
  return {
    host: escapeText(input.host, {max: 255}),
    time: iso(input.now),
    blocked: input.blocked.map(digestBlock),
    released: input.released.map(digestBlock),
    ...(accounts.length === 0
      ? {}
      : {
          accounts: accounts.map((a) => ({
            instance: a.instance,
            account: escapeText(a.account, {max: MAX_USER_LENGTH}),
            addresses: a.addresses,
            first: iso(a.first),
            last: iso(a.last),
          })),
        }),
  }
}

/** `2026-11-25 13:00:00Z` */
function shortTime(isoTime: string): string {
  return isoTime.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')
}

/** 45 min, 2 h, 1 h 30 min, 7 d. */
export function duration(minutes: number | null): string {
  if (minutes === null) return 'until deleted'
  if (minutes < 60) return `${minutes} min`
  if (minutes % 1440 === 0) return `${minutes / 1440} d`
  const h = Math.floor(minutes / 60)
  const m = minutes % 60
  return m === 0 ? `${h} h` : `${h} h ${m} min`
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const numeric = new Set([2])
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        if (i === cells.length - 1) return c
        const w = widths[i] ?? 0
        return numeric.has(i) ? c.padStart(w) : c.padEnd(w)
      })
      .join('  ')
      .trimEnd()
  return [line(head), ...rows.map(line)].map((l) => `  ${l}`)
}

function section(title: string, blocks: DigestBlock[]): string[] {
  if (blocks.length === 0) return []
  const rows = blocks.map((b) => [
    b.ip,
    b.instance,
    String(b.attempts),
    duration(b.minutes),
    b.blockedUntil === null ? '-' : shortTime(b.blockedUntil),
    b.rule === null ? '-' : ruleShort(b.rule),
    b.users.length === 0 ? '-' : b.users.join(', '),
  ])
  return [
    `${title} (${blocks.length}):`,
    ...table(['address', 'instance', 'attempts', 'block', 'until', 'by', 'users tried'], rows),
    '',
  ]
}

function accountSection(accounts: DigestAccount[]): string[] {
  if (accounts.length === 0) return []
  const rows = accounts.map((a) => [a.account, a.instance, String(a.addresses), shortTime(a.first), shortTime(a.last)])
  return [`Accounts under attack (${accounts.length}):`, ...table(['account', 'instance', 'addresses', 'first failure', 'last failure'], rows), '']
}

/** The subject and plain-text body of the one mail of a run. */
export function digestText(d: Digest, subjectPrefix = '[rcguard]'): {subject: string; text: string} {
  const counts: string[] = []
  const accounts = d.accounts ?? []
  if (d.blocked.length > 0) counts.push(`${d.blocked.length} blocked`)
  if (d.released.length > 0) counts.push(`${d.released.length} released`)
  if (accounts.length > 0) counts.push(`${accounts.length} account(s) under attack`)
  const summary = counts.length === 0 ? 'no changes' : counts.join(', ')
  const subject = `${subjectPrefix === '' ? '' : `${subjectPrefix} `}${d.host}: ${summary}`
  const lines = [
    `rcguard on ${d.host} at ${shortTime(d.time)}: ${summary}.`,
    '',
    ...section('Blocked', d.blocked),
    ...section('Released', d.released),
    ...accountSection(accounts),
    'User names are as the log shows them, with control and format characters escaped (\\xNN, \\u{N}).',
    'See every block with "rcguard list"; lift one with "rcguard unblock ADDRESS".',
    'The digest is attached as JSON (rcguard-digest.json).',
  ]
  return {subject, text: `${lines.join('\n')}\n`}
}
