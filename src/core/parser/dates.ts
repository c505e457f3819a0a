/**
 * Timestamps in log envelopes.
 *
 * Roundcube's file driver formats them with PHP's date() and
 * `log_date_format`, default `d-M-Y H:i:s O` (`25-Nov-2026 13:00:00 +0000`).
 * Without a configured format the common shapes are recognised on their own;
 * with one (`dateFormat` of a log), the PHP format string is compiled into a
 * parser. A time without an offset is read in the log's time zone (the host's
 * unless configured).
 */
import {UTC_NAMES, isKnownZone, wallTimeToUtc} from './timezone.js'

const MONTHS: Record<string, number> = {
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11,
}
const MONTH_NAMES = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december']

export function monthIndex(name: string): number | undefined {
  return MONTHS[name.slice(0, 3).toLowerCase()]
}

interface Fields {
  year?: number
  month?: number
  day?: number
  hour?: number
  minute?: number
  second?: number
  ms?: number
  pm?: boolean
  /** Offset east of UTC in minutes, when the text has one. */
  offset?: number
  zone?: string
  epoch?: number
}

function offsetMinutes(sign: string, hh: string, mm: string): number {
  const v = Number(hh) * 60 + Number(mm)
  return sign === '-' ? -v : v
}

function fraction(digits: string | undefined): number {
  return digits === undefined || digits === '' ? 0 : Math.floor(Number(`0.${digits}`) * 1000)
}

/** Builds an instant; zone is the log's zone for times that carry none. */
function instant(f: Fields, zone: string | undefined): number | null {
  if (f.epoch !== undefined) return f.epoch
  const {year, month, day} = f
  if (year === undefined || month === undefined || day === undefined) return null
  let hour = f.hour ?? 0
  if (f.pm !== undefined) hour = (hour % 12) + (f.pm ? 12 : 0)
  const minute = f.minute ?? 0
  const second = f.second ?? 0
  if (month < 0 || month > 11 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null
  const ms = f.ms ?? 0
  if (f.offset !== undefined) return Date.UTC(year, month, day, hour, minute, second, ms) - f.offset * 60_000
  let z = zone
  if (f.zone !== undefined) {
    if (UTC_NAMES.has(f.zone)) return Date.UTC(year, month, day, hour, minute, second, ms)
    if (isKnownZone(f.zone)) z = f.zone
  }
  const t = wallTimeToUtc(year, month, day, hour, minute, second, ms, z)
  return Number.isFinite(t) ? t : null
}

const DMY = /^(\d{1,2})-([A-Z][a-z]{2})-(\d{4}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?: ([+-])(\d{2}):?(\d{2})| ([A-Za-z][\w/+-]*))?$/
const YMD = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(?: ?(?:([+-])(\d{2}):?(\d{2})|(Z))| ([A-Za-z][\w/+-]*))?$/

function digitAt(t: string, i: number): number {
  const c = t.charCodeAt(i) - 48
  return c >= 0 && c <= 9 ? c : -1
}

function twoDigits(t: string, i: number): number {
  const a = digitAt(t, i)
  const b = digitAt(t, i + 1)
  return a === -1 || b === -1 ? -1 : a * 10 + b
}

/**
 * PHP's default `d-M-Y H:i:s O` (`25-Nov-2026 13:00:00 +0000`, with or
 * without the offset, `+00:00` too), read by hand: what DMY makes of it, or
 * undefined for any other text (which the expressions then read).
 */
function phpDefaultDate(t: string, zone: string | undefined): number | null | undefined {
  const n = t.length
  const d0 = digitAt(t, 0)
  if (d0 === -1) return undefined
  const d1 = digitAt(t, 1)
  const i = d1 === -1 ? 1 : 2
  const day = d1 === -1 ? d0 : d0 * 10 + d1
  // -Mon-YYYY HH:MM:SS
  if (n < i + 18 || t.charCodeAt(i) !== 45 || t.charCodeAt(i + 4) !== 45 || t.charCodeAt(i + 9) !== 32 || t.charCodeAt(i + 12) !== 58 || t.charCodeAt(i + 15) !== 58) return undefined
  const m0 = t.charCodeAt(i + 1)
  const m1 = t.charCodeAt(i + 2)
  const m2 = t.charCodeAt(i + 3)
  if (!(m0 >= 65 && m0 <= 90 && m1 >= 97 && m1 <= 122 && m2 >= 97 && m2 <= 122)) return undefined
  const y0 = twoDigits(t, i + 5)
  const y1 = twoDigits(t, i + 7)
  const hour = twoDigits(t, i + 10)
  const minute = twoDigits(t, i + 13)
  const second = twoDigits(t, i + 16)
  if (y0 === -1 || y1 === -1 || hour === -1 || minute === -1 || second === -1) return undefined
  let offset: number | undefined
  const rest = i + 18
  if (n === rest + 6 || n === rest + 7) {
    // ` +HHMM` or ` +HH:MM`
    const sign = t.charCodeAt(rest + 1)
    const colon = n === rest + 7
    const hh = twoDigits(t, rest + 2)
    const mm = twoDigits(t, colon ? rest + 5 : rest + 4)
    if (t.charCodeAt(rest) !== 32 || (sign !== 43 && sign !== 45) || (colon && t.charCodeAt(rest + 4) !== 58) || hh === -1 || mm === -1) return undefined
    offset = sign === 45 ? -(hh * 60 + mm) : hh * 60 + mm
  } else if (n !== rest) {
    return undefined
  }
  const month = MONTHS[t.slice(i + 1, i + 4).toLowerCase()]
  if (month === undefined) return null
  return instant({year: y0 * 100 + y1, month, day, hour, minute, second, ms: 0, offset, zone: undefined}, zone)
}

/**
 * The shapes recognised without a configured format: PHP's default
 * `d-M-Y H:i:s O` (with or without microseconds, or with a zone name as PHP's
 * own error_log writes), and ISO-like `Y-m-d H:i:s[.u] [O|P|Z|zone]`.
 */
export function parseAutoDate(text: string, zone?: string): number | null {
  const quick = phpDefaultDate(text, zone)
  return quick !== undefined ? quick : autoDateByExpressions(text, zone)
}

/** parseAutoDate by the regular expressions alone (what phpDefaultDate must agree with). */
export function autoDateByExpressions(text: string, zone?: string): number | null {
  let m = DMY.exec(text)
  if (m !== null) {
    const month = MONTHS[(m[2] ?? '').toLowerCase()]
    if (month === undefined) return null
    return instant(
      {
        year: Number(m[3]), month, day: Number(m[1]), hour: Number(m[4]), minute: Number(m[5]), second: Number(m[6]),
        ms: fraction(m[7]), offset: m[8] === undefined ? undefined : offsetMinutes(m[8], m[9] ?? '0', m[10] ?? '0'), zone: m[11],
      },
      zone,
    )
  }
  m = YMD.exec(text)
  if (m !== null) {
    return instant(
      {
        year: Number(m[1]), month: Number(m[2]) - 1, day: Number(m[3]), hour: Number(m[4]), minute: Number(m[5]), second: Number(m[6]),
        ms: fraction(m[7]),
        offset: m[11] === 'Z' ? 0 : m[8] === undefined ? undefined : offsetMinutes(m[8], m[9] ?? '0', m[10] ?? '0'),
        zone: m[12],
      },
      zone,
    )
  }
  return null
}

type Setter = (f: Fields, v: string) => void

const TOKENS: Record<string, [string, Setter | null]> = {
  d: ['(\\d{2})', (f, v) => (f.day = Number(v))],
  j: ['(\\d{1,2})', (f, v) => (f.day = Number(v))],
  D: ['[A-Za-z]{3}', null],
  l: ['[A-Za-z]+', null],
  N: ['\\d', null],
  w: ['\\d', null],
  S: ['(?:st|nd|rd|th)', null],
  z: ['\\d{1,3}', null],
  m: ['(\\d{2})', (f, v) => (f.month = Number(v) - 1)],
  n: ['(\\d{1,2})', (f, v) => (f.month = Number(v) - 1)],
  M: ['([A-Za-z]{3})', (f, v) => (f.month = MONTHS[v.toLowerCase()] ?? -1)],
  F: ['([A-Za-z]+)', (f, v) => (f.month = MONTH_NAMES.indexOf(v.toLowerCase()))],
  Y: ['(\\d{4})', (f, v) => (f.year = Number(v))],
  y: ['(\\d{2})', (f, v) => (f.year = 2000 + Number(v))],
  a: ['(am|pm)', (f, v) => (f.pm = v === 'pm')],
  A: ['(AM|PM)', (f, v) => (f.pm = v === 'PM')],
  g: ['(\\d{1,2})', (f, v) => (f.hour = Number(v))],
  h: ['(\\d{2})', (f, v) => (f.hour = Number(v))],
  G: ['(\\d{1,2})', (f, v) => (f.hour = Number(v))],
  H: ['(\\d{2})', (f, v) => (f.hour = Number(v))],
  i: ['(\\d{2})', (f, v) => (f.minute = Number(v))],
  s: ['(\\d{2})', (f, v) => (f.second = Number(v))],
  u: ['(\\d{6})', (f, v) => (f.ms = fraction(v))],
  v: ['(\\d{3})', (f, v) => (f.ms = Number(v))],
  e: ['([A-Za-z][\\w/+-]*)', (f, v) => (f.zone = v)],
  T: ['([A-Za-z][\\w/+-]*|[+-]\\d{2}(?::?\\d{2})?)', (f, v) => {
    const m = /^([+-])(\d{2}):?(\d{2})?$/.exec(v)
    if (m !== null) f.offset = offsetMinutes(m[1] ?? '+', m[2] ?? '0', m[3] ?? '0')
    else f.zone = v
  }],
  O: ['([+-]\\d{4})', (f, v) => (f.offset = offsetMinutes(v[0] ?? '+', v.slice(1, 3), v.slice(3, 5)))],
  P: ['([+-]\\d{2}:\\d{2})', (f, v) => (f.offset = offsetMinutes(v[0] ?? '+', v.slice(1, 3), v.slice(4, 6)))],
  p: ['(Z|[+-]\\d{2}:\\d{2})', (f, v) => (f.offset = v === 'Z' ? 0 : offsetMinutes(v[0] ?? '+', v.slice(1, 3), v.slice(4, 6)))],
  U: ['(\\d{1,12})', (f, v) => (f.epoch = Number(v) * 1000)],
}

function escapeRegex(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

export type DateParser = (text: string) => number | null

/**
 * Compiles a PHP date() format (as set in Roundcube's `log_date_format`) into
 * a parser. Throws on a format character rcguard cannot read back.
 */
export function compilePhpDateFormat(format: string, zone?: string): DateParser {
  let pattern = ''
  const setters: Setter[] = []
  const expanded = format.replace(/(^|[^\\])c/g, '$1Y-m-d\\TH:i:sP').replace(/(^|[^\\])r/g, '$1D, d M Y H:i:s O')
  for (let i = 0; i < expanded.length; i++) {
    const ch = expanded[i] ?? ''
    if (ch === '\\') {
      pattern += escapeRegex(expanded[i + 1] ?? '')
      i++
      continue
    }
    const token = TOKENS[ch]
    if (token === undefined) {
      if (/[A-Za-z]/.test(ch)) throw new Error(`date format character "${ch}" is not supported`)
      pattern += escapeRegex(ch)
      continue
    }
    pattern += token[0]
    if (token[1] !== null) setters.push(token[1])
  }
  const re = new RegExp(`^${pattern}$`)
  return (text) => {
    const m = re.exec(text)
    if (m === null) return null
    const f: Fields = {}
    setters.forEach((set, k) => set(f, m[k + 1] ?? ''))
    return instant(f, zone)
  }
}

