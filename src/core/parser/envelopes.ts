/**
 * Envelopes: what Roundcube's log driver, and whatever carried the line
 * after it, put in front of the message. Each recogniser returns the line's
 * time and the message body, or null. A log's envelope is detected from its
 * lines (the last one that matched is tried first) unless the configuration
 * names it.
 *
 * | id           | example prefix                                                  | time                      |
 * | file         | `[25-Nov-2026 13:00:00 +0000]: `                                | the date (any PHP format) |
 * | stdout       | `errors: ` / `userlogins: ` (also inside php-fpm's decoration)  | none: the read time       |
 * | php          | `[25-Nov-2026 13:47:20 UTC] userlogins: ` (PHP's error_log)     | the date                  |
 * | syslog       | `Nov 25 13:44:56 mail roundcube: ` or `roundcube[4242]: `       | host-local, year inferred |
 * | rfc3339      | `2026-11-25T13:44:57.833801+00:00 mail roundcube: `             | the date                  |
 * | journal-json | one `journalctl -o json` record per line                        | __REALTIME_TIMESTAMP      |
 *
 * journalctl's short-iso output has the rfc3339 shape (`+0000` offsets too).
 */
import {monthIndex, parseAutoDate, type DateParser} from './dates.js'
import {readFileSync} from 'node:fs'
import {wallTimeToUtc, zoneOffset} from './timezone.js'

export const ENVELOPE_IDS = ['file', 'stdout', 'php', 'syslog', 'rfc3339', 'journal-json'] as const

/** Envelopes where every record carries its own envelope (syslog): a line without one is another program's. */
export const RECORD_ENVELOPES: ReadonlySet<string> = new Set(['syslog', 'rfc3339', 'journal-json'])
export type EnvelopeId = (typeof ENVELOPE_IDS)[number]

export interface EnvelopeContext {
  /** syslog identity Roundcube logs under (`syslog_id`), default `roundcube`. */
  ident: string
  /** Parser for a configured `log_date_format`; auto-detected shapes otherwise. */
  dateParser?: DateParser
  /** IANA zone for times written without an offset; undefined: the host's. */
  timezone?: string
  /** The time of this run: the time of lines that carry none, and the reference for syslog's missing year. */
  now: number
  /** The last date text parsed and its time (a one-entry cache). */
  lastDate?: {text: string; time: number}
  /** journal-json: the records to believe. */
  journalTrust?: JournalTrust
}

export interface Enveloped {
  /** Which envelope it is. */
  id: EnvelopeId
  time: number
  body: string
  /**
   * The writing process, where the envelope names it (syslog's `[pid]`,
   * journald's _PID): the pieces of one split message come from one process.
   */
  stream?: string
  /** journald: why the record's trusted fields do not show the web server (it never counts). */
  untrusted?: string
  /** The time has sub-second precision (RFC 3339 with a fraction, journald). */
  precise?: boolean
}

/**
 * Which journald records are the web server's own: its trusted fields (set by
 * journald, not by the sender) must match. Any local user can write a record
 * with SYSLOG_IDENTIFIER=roundcube (`logger -t roundcube …`); only the
 * process, user id and unit tell it apart.
 */
export interface JournalTrust {
  /** _COMM values (a trailing `*` matches any rest), e.g. apache2, php-fpm*; absent: any. */
  comm?: readonly string[]
  /** _UID values; absent: any. */
  uid?: readonly number[]
  /** _SYSTEMD_UNIT values (trailing `*` as in comm); absent: any. */
  unit?: readonly string[]
  /** _EXE values, the executable's path (trailing `*` as in comm); absent: any. */
  exe?: readonly string[]
}

/** The accounts web servers run PHP as: Debian and Ubuntu, RHEL and Fedora, Arch, SUSE, nginx set-ups. */
const WEB_SERVER_USERS = ['www-data', 'apache', 'http', 'wwwrun', 'nginx']

/**
 * Without configuration: records sent by a process running as the web
 * server's account (journald's _UID, which no other local user can take).
 * _COMM is no proof: it is the name the sender was started by (`php`, or any
 * copy of a program named `apache2`).
 */
export function defaultJournalTrust(passwd = '/etc/passwd'): JournalTrust {
  let uids: number[] = []
  try {
    uids = readFileSync(passwd, 'utf8')
      .split('\n')
      .map((l) => l.split(':'))
      .filter((f) => WEB_SERVER_USERS.includes(f[0] ?? ''))
      .map((f) => Number(f[2]))
      .filter((n) => Number.isInteger(n) && n > 0)
  } catch {
    // No passwd to read: no account is trusted until journalTrust names one.
  }
  return {uid: uids}
}

let defaultTrust: JournalTrust | undefined
function journalTrustOrDefault(trust: JournalTrust | undefined): JournalTrust {
  if (trust !== undefined) return trust
  defaultTrust ??= defaultJournalTrust()
  return defaultTrust
}

export interface Envelope {
  id: EnvelopeId
  match(line: string, ctx: EnvelopeContext): Enveloped | null
}

/** The file envelope, as read by hand in `file` below (test/core/hand-parsing.test.ts checks the two agree). */
export const FILE = /^\[([^\]]{1,64})\]: /
const STDOUT = /^(?:errors|userlogins): /
// `s`: the message is attacker text and may hold a CR or U+2028/U+2029, which `.` would not match.
const FPM = /^\[[^\]]*\] WARNING: \[pool [^\]]*\] child \d+ said into std(?:out|err): "(.*)"$/s
const PHP = /^\[([^\]]{1,64})\] (?:errors|userlogins): /
const SYSLOG = /^([A-Z][a-z]{2}) ([ \d]?\d) (\d{2}):(\d{2}):(\d{2}) (\S+) ([^\s:[]+)(?:\[(\d+)\])?: /
const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})) (\S+) ([^\s:[]+)(?:\[(\d+)\])?: /

/** The longest date text FILE takes: `[^\]]{1,64}`. */
const FILE_DATE_MAX = 64

const file: Envelope = {
  id: 'file',
  // FILE (/^\[([^\]]{1,64})\]: /) without a regular expression: the first `]` must close a date of 1 to 64 characters.
  match(line, ctx) {
    if (line.charCodeAt(0) !== 91) return null
    const close = line.indexOf(']', 1)
    if (close < 2 || close > FILE_DATE_MAX + 1 || line.charCodeAt(close + 1) !== 58 || line.charCodeAt(close + 2) !== 32) return null
    // Consecutive lines mostly share their second: parse each date text once (compared in place, not cut out).
    const last = ctx.lastDate
    if (last !== undefined && last.text.length === close - 1 && line.startsWith(last.text, 1)) return {id: 'file', time: last.time, body: line.slice(close + 3)}
    const text = line.slice(1, close)
    const time = ctx.dateParser !== undefined ? ctx.dateParser(text) : parseAutoDate(text, ctx.timezone)
    if (time === null) return null
    ctx.lastDate = {text, time}
    return {id: 'file', time, body: line.slice(close + 3)}
  },
}

const stdout: Envelope = {
  id: 'stdout',
  match(line, ctx) {
    const fpm = FPM.exec(line)
    const inner = fpm === null ? line : (fpm[1] ?? '')
    const m = STDOUT.exec(inner)
    if (m === null) return null
    return {id: 'stdout', time: ctx.now, body: inner.slice(m[0].length)}
  },
}

const php: Envelope = {
  id: 'php',
  match(line, ctx) {
    const m = PHP.exec(line)
    if (m === null) return null
    const time = parseAutoDate(m[1] ?? '', ctx.timezone)
    if (time === null) return null
    return {id: 'php', time, body: line.slice(m[0].length)}
  },
}

const YEAR_SLACK_MS = 7 * 24 * 3600 * 1000

const syslog: Envelope = {
  id: 'syslog',
  match(line, ctx) {
    const m = SYSLOG.exec(line)
    if (m === null || m[7] !== ctx.ident) return null
    const month = monthIndex(m[1] ?? '')
    if (month === undefined) return null
    const fields = [Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])] as const
    // No year in the line: this year, or last year for a December line read in January.
    // "This year" on the log's wall clock: around New Year it differs from UTC's.
    const year = new Date(ctx.now + zoneOffset(ctx.now, ctx.timezone)).getUTCFullYear()
    let time = wallTimeToUtc(year, month, ...fields, 0, ctx.timezone)
    if (time > ctx.now + YEAR_SLACK_MS) time = wallTimeToUtc(year - 1, month, ...fields, 0, ctx.timezone)
    if (!Number.isFinite(time)) return null
    return {id: 'syslog', time, body: line.slice(m[0].length), ...(m[8] === undefined ? {} : {stream: m[8]})}
  },
}

const rfc3339: Envelope = {
  id: 'rfc3339',
  match(line, ctx) {
    const m = RFC3339.exec(line)
    if (m === null || m[3] !== ctx.ident) return null
    const time = parseAutoDate(m[1] ?? '', ctx.timezone)
    if (time === null) return null
    return {id: 'rfc3339', time, body: line.slice(m[0].length), ...(m[4] === undefined ? {} : {stream: m[4]}), ...((m[1] ?? '').includes('.') ? {precise: true} : {})}
  },
}

function globMatch(pattern: string, value: string): boolean {
  return pattern.endsWith('*') ? value.startsWith(pattern.slice(0, -1)) : pattern === value
}

/** Why a journald record is not the web server's, or undefined when it is. */
export function journalDistrust(rec: Record<string, unknown>, trust: JournalTrust): string | undefined {
  const comm = typeof rec._COMM === 'string' ? rec._COMM : undefined
  const uid = rec._UID === undefined ? undefined : Number(rec._UID)
  const unit = typeof rec._SYSTEMD_UNIT === 'string' ? rec._SYSTEMD_UNIT : undefined
  const exe = typeof rec._EXE === 'string' ? rec._EXE : undefined
  if (trust.exe !== undefined && (exe === undefined || !trust.exe.some((p) => globMatch(p, exe)))) return `sent by ${exe ?? 'an unknown program'}, not by the web server`
  if (comm === undefined && uid === undefined && unit === undefined) return 'the record has none of journald\'s trusted fields (_COMM, _UID, _SYSTEMD_UNIT): its sender cannot be told'
  if (trust.comm !== undefined && (comm === undefined || !trust.comm.some((p) => globMatch(p, comm)))) {
    return `sent by ${comm ?? 'an unknown program'}${uid === undefined ? '' : ` (uid ${uid})`}, not by the web server`
  }
  if (trust.uid !== undefined && (uid === undefined || !trust.uid.includes(uid))) {
    return `sent by uid ${uid ?? 'unknown'}${comm === undefined ? '' : ` (${comm})`}, not the web server's account (journalTrust)`
  }
  if (trust.unit !== undefined && (unit === undefined || !trust.unit.some((p) => globMatch(p, unit)))) return `sent from unit ${unit ?? 'none'}, not the web server's`
  return undefined
}

function journalMessage(value: unknown): string | null {
  if (typeof value === 'string') return value
  // journald gives a MESSAGE that is not valid UTF-8 as an array of bytes.
  if (Array.isArray(value) && value.every((b) => typeof b === 'number')) return Buffer.from(value as number[]).toString('utf8')
  return null
}

const journalJson: Envelope = {
  id: 'journal-json',
  match(line, ctx) {
    if (!line.startsWith('{')) return null
    let rec: Record<string, unknown>
    try {
      rec = JSON.parse(line) as Record<string, unknown>
    } catch {
      return null
    }
    if (rec === null || typeof rec !== 'object' || rec.SYSLOG_IDENTIFIER !== ctx.ident) return null
    const body = journalMessage(rec.MESSAGE)
    const us = Number(rec.__REALTIME_TIMESTAMP ?? rec._SOURCE_REALTIME_TIMESTAMP)
    if (body === null || !Number.isFinite(us)) return null
    const untrusted = journalDistrust(rec, journalTrustOrDefault(ctx.journalTrust))
    const pid = rec._PID
    return {
      id: 'journal-json',
      time: Math.floor(us / 1000),
      precise: true,
      body: body.replace(/\n+$/, ''),
      ...(typeof pid === 'string' || typeof pid === 'number' ? {stream: String(pid)} : {}),
      ...(untrusted === undefined ? {} : {untrusted}),
    }
  },
}

export const ENVELOPES: Record<EnvelopeId, Envelope> = {
  file,
  stdout,
  php,
  syslog,
  rfc3339,
  'journal-json': journalJson,
}
