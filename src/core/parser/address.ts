/**
 * The address field (ADDR) of Roundcube's login lines, as written by
 * rcube_utils::remote_ip(): REMOTE_ADDR, optionally followed by a group
 * `(X-Real-IP: …,X-Forwarded-For: …)`, glued to the address (≤ 1.4) or after
 * one space (≥ 1.5). The user name before it and the header values inside it
 * are the client's text.
 *
 * A line is read by its *readings*: every ` from ADDR…` that Roundcube could
 * have written, given what it is known to write and what a client cannot put
 * there. Each reading names a sender; when every reading names the same
 * sender the line is certain, whatever the client typed. The constraints
 * (see `Constraints`) come from Roundcube's own code:
 * - nothing after the real ` from ` holds a line feed (REMOTE_ADDR, header
 *   values and Roundcube's tail cannot), so the real one is on the entry's
 *   last physical line;
 * - the errors log lowercases the user name (login_lc = 2, the default): a
 *   reading whose user part holds an upper-case letter is header text, and
 *   the IMAP server's text after the address starts with an upper-case word.
 * Two more facts only settle readings that disagree (grammars.ts), since a
 * wrong assumption there could remove the real reading and leave a forged
 * one: Roundcube trims the user name, and userlogins cuts it at 256 bytes.
 */
import {canonicalIp} from '../net/ip.js'

/** One way to read the address field. Offsets index the text given to `readings`. */
export interface Reading {
  /** Index of the ` from ` that starts this reading. */
  at: number
  /** REMOTE_ADDR as written (may be empty). */
  raw: string
  /** Canonical form, or null when raw is empty or not an address. */
  ip: string | null
  /** The header group's content (without its parentheses) as [start, end), or null. */
  headers: [number, number] | null
  /** Where the text after the address field starts (F1: the IMAP server's text). */
  rest: number
  /** Its user part neither starts nor ends with white space, as a name Roundcube trimmed (unset: not checked). */
  trimmed?: boolean
  /** The header group follows the address without a space (Roundcube before 1.5); unset: no group. */
  glued?: boolean
}

export type FieldShape = 'session' | 'sentence'

export interface Constraints {
  /** `session` (F2, F3: the field fills the text) or `sentence` (F1: `ADDR. SERVER-TEXT`). */
  shape: FieldShape
  /** Readings must start at or after this index (the last physical line). */
  minAt: number
  /** Readings must start at or before this index; Infinity: no limit. */
  maxAt: number
  /** F1: Roundcube's login_lc (2: the user name is lowercased, 1: its domain, 0: neither). */
  loginLc?: 0 | 1 | 2
}

const GROUP_STARTS = ['(X-Real-IP: ', '(X-Forwarded-For: ']
/** More readings than this and the line is not worth reading: the client stuffed it. */
export const MAX_READINGS = 64
/** ` from ` occurrences looked at, at most (bounded cost on any line). */
const MAX_FROMS = 4096

/** Characters an address field's first token can hold: [0-9A-Za-z:.%_-]. */
/** Up to 64 of them where the field starts (an expression scans a line's text faster than a loop over its characters). */
const IP_CHARS = /[0-9:A-Za-z.%_-]{0,64}/y
/** The next upper-case letter. */
const UPPER = /[A-Z]/g

function isUpper(c: number): boolean {
  return c >= 65 && c <= 90
}

function groupAt(text: string, i: number): number {
  const r = text.charCodeAt(i) === 32 ? i + 1 : i
  return GROUP_STARTS.some((g) => text.startsWith(g, r)) ? r : -1
}

/** The address of a field's text: null when empty, undefined when it is no address (then Roundcube did not write it). */
function fieldIp(raw: string): string | null | undefined {
  if (raw === '') return null
  return canonicalIp(raw) ?? undefined
}

/** A reading with every field set, in one order (one object shape for all readings). */
function reading(at: number, raw: string, ip: string | null, headers: [number, number] | null, rest: number, glued: boolean | undefined): Reading {
  return {at, raw, ip, headers, rest, trimmed: undefined, glued}
}

/** Where the last `). ` of a text is (the end of an F1 header group), for the last text asked about. */
let groupText: string | undefined
let groupEnd = -1

function groupEndOf(text: string): number {
  if (text !== groupText) {
    groupText = text
    groupEnd = lastIndexOf(text, '). ')
  }
  return groupEnd
}

/** The field that starts just after the ` from ` at `at`, or null when Roundcube could not have written it there. */
function readField(text: string, at: number, shape: FieldShape): Reading | null {
  const p = at + 6
  IP_CHARS.lastIndex = p
  const end = IP_CHARS.test(text) ? IP_CHARS.lastIndex : p
  if (shape === 'session') {
    if (end === text.length) {
      const raw = text.slice(p, end)
      const ip = fieldIp(raw)
      return ip === undefined ? null : reading(at, raw, ip, null, text.length, undefined)
    }
    const g = groupAt(text, end)
    if (g === -1 || text.charCodeAt(text.length - 1) !== 41) return null
    const raw = text.slice(p, end)
    const ip = fieldIp(raw)
    return ip === undefined ? null : reading(at, raw, ip, [g + 1, text.length - 1], text.length, g === end)
  }
  // sentence: `IP. SERVER-TEXT`, or `IP[ ](HEADERS). SERVER-TEXT` with the group ending at the last `). `.
  if (end > p && text.charCodeAt(end - 1) === 46 && text.charCodeAt(end) === 32) {
    const raw = text.slice(p, end - 1)
    const ip = fieldIp(raw)
    return ip === undefined ? null : reading(at, raw, ip, null, end + 1, undefined)
  }
  const g = groupAt(text, end)
  if (g === -1) return null
  // Looked for only when a reading has a group (most lines have none).
  const groupEnd = groupEndOf(text)
  if (groupEnd <= g) return null
  const raw = text.slice(p, end)
  const ip = fieldIp(raw)
  return ip === undefined ? null : reading(at, raw, ip, [g + 1, groupEnd], groupEnd + 3, g === end)
}

/**
 * Where `needle` last occurs in `text` (as text.lastIndexOf(needle), which
 * V8 runs as a plain loop: a forward indexOf, which it runs fast, is cheaper
 * on the short texts of log lines).
 */
export function lastIndexOf(text: string, needle: string): number {
  let last = -1
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + 1)) last = i
  return last
}

/**
 * Every reading of `text` (the part of a line between the grammar's fixed
 * start and its tail, with a leading space so that an empty user name still
 * has its ` from `), rightmost first. `tooMany` when the client stuffed the
 * line with more candidate fields than are worth reading.
 */
export function readings(text: string, c: Constraints): {list: readonly Reading[]; tooMany: boolean} {
  // Most lines have one reading: the list is made when it comes, with room for it alone.
  let list: Reading[] = NONE
  // F1 with a lowercased user name: the first upper-case letter bounds where a reading can start.
  const firstUpper = c.shape === 'sentence' && (c.loginLc ?? 2) > 0 ? firstUpperFrom(text, 0) : Infinity
  // Every ` from ` at or after minAt, found left to right (overlapping ones too: ` from from `), then read
  // from the right. Most lines have one.
  const first = text.indexOf(' from ', c.minAt)
  if (first === -1) return {list, tooMany: false}
  let froms: number[] | undefined
  for (let i = text.indexOf(' from ', first + 1); i !== -1; i = text.indexOf(' from ', i + 1)) (froms ??= [first]).push(i)
  const count = froms === undefined ? 1 : froms.length
  for (let k = count - 1; k >= 0; k--) {
    const at = froms === undefined ? first : (froms[k] as number)
    if (count - k > MAX_FROMS) return {list, tooMany: true}
    if (at > c.maxAt) continue
    const r = readField(text, at, c.shape)
    if (r === null) continue
    // The IMAP server's text (LOGIN: …, AUTHENTICATE …: …, Could not connect …) starts with a capital.
    if (c.shape === 'sentence' && !isUpper(text.charCodeAt(r.rest))) continue
    // The errors log: the user name ends before ` against HOST`.
    const userEnd = c.shape === 'sentence' ? againstStart(text, at) : at
    if (c.shape === 'sentence' && !lowercaseUserPart(text, userEnd, firstUpper, c.loginLc ?? 2)) continue
    // Roundcube trims the user name it logs (PHP's trim set): it neither starts nor ends with white space.
    r.trimmed = trimmedUserPart(text, userEnd)
    if (list === NONE) list = [r]
    else list.push(r)
    if (list.length > MAX_READINGS) return {list, tooMany: true}
  }
  return {list, tooMany: false}
}

const NONE: Reading[] = []

const TRIMMED = new Set([32, 9, 10, 13, 0, 11])

/** Whether text[1, end) (the user part: before ` against HOST` in the errors log) can be a user name Roundcube trimmed. */
function trimmedUserPart(text: string, end: number): boolean {
  if (end <= 1) return true
  if (TRIMMED.has(text.charCodeAt(1)) || TRIMMED.has(text.charCodeAt(end - 1))) return false
  // The same characters as syslog writes them: rsyslog's #011 #012 #013 #015 #000, PHP's \x09 \x0d …
  return !(end - 1 >= 4 && escapedSpaceAt(text, 1)) && !(end - 1 >= 4 && escapedSpaceAt(text, end - 4))
}

/** Whether the 4 characters at `i` are ESCAPED_SPACE (which starts with `#` or a backslash: looked at only then). */
function escapedSpaceAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i)
  return (c === 35 || c === 92) && ESCAPED_SPACE.test(text.slice(i, i + 4))
}

const ESCAPED_SPACE = /^(?:#0(?:00|11|12|13|15)|\\x0[09abdABD])$/

function firstUpperFrom(text: string, from: number): number {
  UPPER.lastIndex = from
  return UPPER.test(text) ? UPPER.lastIndex - 1 : Infinity
}

/**
 * Whether text[0, userEnd) can be an errors-log user name: lowercased by
 * Roundcube (login_lc 2: all of it; 1: the domain after its last `@`),
 * followed by ` against HOST` (1.4+), the host coming from the configuration.
 */
function lowercaseUserPart(text: string, userEnd: number, firstUpper: number, loginLc: 0 | 1 | 2): boolean {
  if (loginLc === 0) return true
  if (loginLc === 2) return firstUpper >= userEnd
  const atSign = text.lastIndexOf('@', userEnd - 1)
  return atSign === -1 || firstUpperFrom(text, atSign) >= userEnd
}

/**
 * Where ` against HOST` starts when it ends at `at` (the errors log, 1.4+),
 * else `at`. HOST is a configured host name: no spaces, at most 255
 * characters, so the look back is bounded whatever the line holds.
 */
function againstStart(text: string, at: number): number {
  const stop = Math.max(0, at - 256)
  for (let i = at - 1; i >= stop; i--) {
    if (text.charCodeAt(i) !== 32) continue
    return i >= 8 && i + 1 < at && text.startsWith(' against ', i - 8) ? i - 8 : at
  }
  return at
}
