/**
 * Event grammars: one object per Roundcube line shape. Adding a format is
 * adding an entry to GRAMMARS, not a branch in the parser.
 *
 * A grammar gets the message of one whole log entry (its physical lines
 * joined with LF when a user name split it) and reads it from the right,
 * where Roundcube's own text ends it. The address comes from the readings of
 * address.ts: a line counts against a sender only when every reading that
 * Roundcube could have written names that sender.
 */
import {lastIndexOf, readings, type Constraints, type Reading} from './address.js'
import {f1Tail, f2Tail, f3Tail, withoutAgainst} from './tails.js'
import {clientBehindProxy, type ProxyList} from './proxy.js'
import {canonicalIp} from '../net/ip.js'
import type {GrammarId, LoginEvent} from './types.js'

export interface ParseOptions {
  /** `(error: N)` codes of F2 lines that count as a failed attempt. */
  countErrors: ReadonlySet<number>
  /** Reverse proxies in front of Roundcube: when REMOTE_ADDR is one, the client comes from the header it writes. */
  trustedProxies: ProxyList
  /** Roundcube's login_lc (default 2): how the errors log's user names are lowercased. */
  loginLc?: 0 | 1 | 2
  /** Bytes of a user name userlogins keeps (256 since Roundcube 1.2, then `...`); 0: whole names (1.0, 1.1). */
  userNameCut?: number
  /** How this log writes the header group, as learnt from its lines: glued to the address (≤ 1.4) or after a space. */
  groupStyle?: 'glued' | 'spaced'
}

export type GrammarResult = Omit<LoginEvent, 'time' | 'session'>

export interface Grammar {
  id: GrammarId
  /** What the line says, for documentation and reports. */
  description: string
  /** The fixed text a line of this shape starts with (after envelope and session prefix). */
  prefixes: readonly string[]
  /** How one physical line that ends an entry of this shape ends (the tail Roundcube writes). */
  tail: RegExp
  /**
   * Parses the message after the prefix, given with one space in front (the
   * prefix's last character: an empty user name still has its ` from `);
   * null when it is not this shape after all.
   */
  parse(text: string, options: ParseOptions): GrammarResult | null
}

interface Countable {
  counted: boolean
  reason: string
}

/** The sender one reading names: REMOTE_ADDR, or the client its trusted proxy wrote. */
interface Sender {
  ip: string | null
  note: string
  proxy?: string
  disagree?: boolean
}

function senderOf(text: string, r: Reading, options: ParseOptions): Sender {
  if (r.ip === null) return {ip: null, note: 'no usable client address'}
  const header = options.trustedProxies.headerOf(r.ip)
  if (header === null) return {ip: r.ip, note: ''}
  const group = r.headers === null ? null : text.slice(r.headers[0], r.headers[1])
  const client = clientBehindProxy(group, header, options.trustedProxies)
  if (client.ip === null) {
    return {ip: null, proxy: r.ip, disagree: client.disagree, note: `from trusted proxy ${r.ip}, but ${client.why ?? 'no client'}`}
  }
  return {ip: client.ip, note: `client ${client.ip} behind trusted proxy ${r.ip}`}
}

/**
 * Attributes a line from its readings. One sender for all readings: that
 * sender. Several: ambiguous, with the senders listed for the twin line of
 * the other log to settle.
 */
/**
 * A result with every field a sourced event will get, in one order: the
 * parser and the scan then fill them in without changing the object's shape
 * (a scan makes one per login line).
 */
export function result(
  grammar: GrammarId,
  outcome: 'failure' | 'success',
  ip: string | null,
  user: string,
  errorCode: number | null,
  counted: boolean,
  reason: string,
): GrammarResult {
  const r = {grammar, outcome, time: 0, ip, user, session: null, errorCode, counted, reason, instance: '', file: '', lineNo: 0}
  return r as GrammarResult
}

function attribute(
  grammar: GrammarId,
  outcome: 'failure' | 'success',
  text: string,
  found: {list: readonly Reading[]; tooMany: boolean},
  /** The user name a reading gives (a plain function of the text: no closure per line). */
  userOf: (text: string, r: Reading) => string,
  /** Whether the line counts: the same for all readings, or as the chosen reading says (with `extra`, F1's METHOD). */
  countable: Countable | ((text: string, r: Reading, extra: string) => Countable),
  options: ParseOptions,
  errorCode: number | null = null,
  /** userlogins: readings starting after this index would make the user name longer than Roundcube writes one. */
  cutAt = Infinity,
  extra = '',
): GrammarResult | null {
  const chosen = found.list[0]
  if (chosen === undefined) return null
  if (found.tooMany) {
    const r = result(grammar, outcome, chosen.ip, userOf(text, chosen), errorCode, false, 'ambiguous: the line holds too many address fields to read')
    r.doubt = 'ambiguous'
    r.senders = []
    return r
  }
  let first: Sender
  let settled = ''
  let style: 'glued' | 'spaced' | undefined
  if (found.list.length === 1) {
    // No trusted proxy in front: the sender is REMOTE_ADDR (the common case, without a Sender made).
    first = chosen.ip !== null && options.trustedProxies.size === 0 ? {ip: chosen.ip, note: ''} : senderOf(text, chosen, options)
    // One reading: the field is Roundcube's own, and so is the way its header group is written.
    if (chosen.glued !== undefined) style = chosen.glued ? 'glued' : 'spaced'
  } else {
    let pairs = found.list.map((r) => ({r, s: senderOf(text, r, options)}))
    // A trusted proxy always writes its header: a reading in which the proxy's own part is missing or
    // is no address cannot be what Roundcube logged, as long as another reading makes sense.
    if (pairs.some((p) => p.s.ip !== null)) pairs = pairs.filter((p) => p.s.ip !== null || p.s.proxy === undefined || p.s.disagree === true)
    const agree = (ps: typeof pairs): boolean => new Set(ps.map((p) => p.s.ip ?? `\u0000${p.s.proxy ?? ''}`)).size === 1
    // Readings that disagree are settled by what Roundcube and the web server do to every line, when the
    // readings that fit agree: Roundcube trims the user name, userlogins (1.2+) keeps 256 bytes of it,
    // and this log writes its header groups one way (learnt from lines with one reading). Each fact is
    // added to the ones before. (Not the address's form: a web server behind realip may pass on a
    // header's text as REMOTE_ADDR, upper case and all.)
    const facts: [(p: (typeof pairs)[number]) => boolean, string][] = [
      [(p) => p.r.trimmed !== false, 'Roundcube trims user names'],
      [(p) => p.r.at <= cutAt, 'and keeps 256 bytes of them'],
      [(p) => options.groupStyle === undefined || p.r.glued === undefined || p.r.glued === (options.groupStyle === 'glued'), 'this log writes header groups one way'],
    ]
    let kept = pairs
    const why: string[] = []
    for (const [fits, text] of facts) {
      if (agree(pairs)) break
      const next = kept.filter(fits)
      if (next.length === 0) break
      kept = next
      why.push(text)
      if (agree(kept)) {
        pairs = kept
        settled = ` (settled: ${why.join(', ')})`
      }
    }
    first = (pairs[0] as (typeof pairs)[number]).s
    if (!agree(pairs)) {
      const named = [...new Set(pairs.map((p) => p.s.ip).filter((ip): ip is string => ip !== null))]
      const r = result(
        grammar,
        outcome,
        first.ip ?? chosen.ip,
        userOf(text, chosen),
        errorCode,
        false,
        `ambiguous: the user name or a header imitates Roundcube's "from ADDR (…)": it could be from ${named.join(' or ') || 'nobody usable'}`,
      )
      r.doubt = 'ambiguous'
      r.senders = named
      r.readings = pairs.flatMap((p) => (p.s.ip === null ? [] : [{user: userOf(text, p.r), ip: p.s.ip}])).slice(0, 8)
      return r
    }
  }
  const {counted, reason} = typeof countable === 'function' ? countable(text, chosen, extra) : countable
  if (first.ip === null) {
    const r = result(grammar, outcome, null, userOf(text, chosen), errorCode, false, first.note)
    if (first.proxy !== undefined) {
      r.doubt = 'proxy'
      r.proxy = first.proxy
    }
    return r
  }
  const r = result(grammar, outcome, first.ip, userOf(text, chosen), errorCode, outcome === 'failure' && counted, `${first.note === '' ? reason : `${reason}, ${first.note}`}${settled}`)
  if (style !== undefined) r.groupStyle = style
  return r
}

/**
 * The last index at which a user name that starts at `start` can end, cut at
 * `cut` bytes plus `...`. Bytes the log wrote as escapes count as one
 * (rsyslog's `#012`, PHP's `\x09`), and so does U+FFFD (a byte the reader
 * could not decode): counting too few only keeps more readings.
 */
function userNameEnd(text: string, start: number, cut: number): number {
  let bytes = 0
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 35 && /^#\d{3}/.test(text.slice(i, i + 4))) {
      bytes++
      i += 3
    } else if (c === 92 && /^\\x[0-9a-fA-F]{2}/.test(text.slice(i, i + 4))) {
      bytes++
      i += 3
    } else {
      bytes += c < 0x80 || c === 0xfffd ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? 2 : c >= 0xdc00 && c <= 0xdfff ? 2 : 3
    }
    if (bytes > cut + 3) return i
  }
  return text.length
}

/**
 * Where the last physical line of a joined entry starts: the real ` from ` is on it. (Readings start at 1
 * at the earliest: the texts get a space in front, and an empty user name is logged with two spaces.)
 */
function lastLineStart(text: string): number {
  return lastIndexOf(text, '\n') + 1
}

const F3_ID = / \(ID: \d+\)$/
/** F1's server text, as /^(?:LOGIN|AUTHENTICATE [A-Z0-9_-]+): / where it starts (sticky: read in place, not cut out). */
const F1_SERVER_PREFIX = /(?:LOGIN|AUTHENTICATE [A-Z0-9_-]+): /y
/** The server text after that prefix, as /^(?:Could not connect|…)/ where it starts. */
const F1_NOT_A_GUESS = /(?:Could not connect|Unable to negotiate TLS|Empty host|Configuration error|Login disabled)/y

/** Whether F1's server text, which starts at `at`, says the IMAP login never got to the password. */
function notAGuess(head: string, at: number): boolean {
  F1_SERVER_PREFIX.lastIndex = at
  const start = F1_SERVER_PREFIX.test(head) ? F1_SERVER_PREFIX.lastIndex : at
  F1_NOT_A_GUESS.lastIndex = start
  return F1_NOT_A_GUESS.test(head)
}

/**
 * The tail Roundcube wrote on the last F1 line read (most lines of a log end
 * alike: the same file, line and request). f1Tail reads nothing left of the
 * tail, so a text that ends with the same tail has it at the same distance
 * from its end.
 */
let lastF1: {tail: string; method: string} | null = null

function f1TailOf(text: string): {index: number; method: string} | null {
  if (lastF1 !== null && text.endsWith(lastF1.tail)) return {index: text.length - lastF1.tail.length, method: lastF1.method}
  const tail = f1Tail(text)
  if (tail !== null) lastF1 = {tail: text.slice(tail.index), method: tail.method}
  return tail
}

/** The user name of a reading: what stands between the space put in front and its ` from `. */
function userBeforeFrom(text: string, r: Reading): string {
  return text.slice(1, r.at)
}

function f3User(text: string, r: Reading): string {
  return text.slice(1, r.at).replace(F3_ID, '')
}

function f1User(text: string, r: Reading): string {
  return withoutAgainst(text.slice(1, r.at))
}

const SUCCESS: Countable = {counted: false, reason: 'successful login'}
const PLUGIN_COUNTED: Countable = {counted: true, reason: 'failed login (plugin line)'}
const F1_COUNTED: Countable = {counted: true, reason: 'IMAP login failed'}
const F1_NOT_A_GUESS_TEXT: Countable = {counted: false, reason: 'IMAP connection or configuration error, not a password guess'}
const F1_REAUTH = new Map<string, Countable>()

function f1Countable(text: string, r: Reading, method: string): Countable {
  if (notAGuess(text, r.rest)) return F1_NOT_A_GUESS_TEXT
  if (method === 'POST') return F1_COUNTED
  let c = F1_REAUTH.get(method)
  if (c === undefined) {
    c = {counted: false, reason: `not a login (${method} request): session re-authentication`}
    // METHOD is [A-Z]+ from the line: remember a few.
    if (F1_REAUTH.size < 64) F1_REAUTH.set(method, c)
  }
  return c
}

/** F2's verdict for an error code (the same object for a code seen before). */
const F2_BY_CODE = new Map<string, Countable>()

function f2Countable(code: number, counts: boolean): Countable {
  const key = `${counts ? '+' : '-'}${code}`
  let c = F2_BY_CODE.get(key)
  if (c === undefined) {
    c = counts ? {counted: true, reason: `failed login (error ${code})`} : {counted: false, reason: code === -2 ? 'storage error (error -2), not a password guess' : `error ${code} is not counted`}
    if (F2_BY_CODE.size < 64) F2_BY_CODE.set(key, c)
  }
  return c
}

/** F2 — userlogins: `Failed login for USER from ADDR in session SID (error: N)`. */
const failedLogin: Grammar = {
  id: 'F2',
  description: 'userlogins: Failed login for USER from ADDR in session SID (error: N)',
  prefixes: ['Failed login for '],
  tail: / in session (?:[A-Za-z0-9,-]*|no-session) \(error: -?\d{1,9}\)$/,
  parse(text, options) {
    const m = f2Tail(text)
    // The fixed tail starts in the message, not in the space put in front.
    if (m === null || m.head === '') return null
    const head = m.head
    const found = readings(head, {shape: 'session', minAt: Math.max(1, lastLineStart(head) - 1), maxAt: Infinity})
    const cut = options.userNameCut ?? 256
    const cutAt = cut > 0 ? userNameEnd(head, 1, cut) : Infinity
    const code = Number(m.code)
    return attribute('F2', 'failure', head, found, userBeforeFrom, f2Countable(code, options.countErrors.has(code)), options, code, cutAt)
  },
}

/** F3 — userlogins: `Successful login for USER (ID: N) from ADDR in session SID`. */
const successfulLogin: Grammar = {
  id: 'F3',
  description: 'userlogins: Successful login for USER (ID: N) from ADDR in session SID',
  prefixes: ['Successful login for '],
  tail: / in session (?:[A-Za-z0-9,-]*|no-session)$/,
  parse(text, options) {
    const head = f3Tail(text)
    // The fixed tail starts in the message, not in the space put in front.
    if (head === null || head === '') return null
    const c: Constraints = {shape: 'session', minAt: Math.max(1, lastLineStart(head) - 1), maxAt: Infinity}
    return attribute('F3', 'success', head, readings(head, c), f3User, SUCCESS, options)
  },
}

/**
 * F1 — errors: `IMAP Error: Login failed for USER [against HOST] from ADDR.
 * SERVER-TEXT in FILE on line N (METHOD URI)`. Written only when Roundcube
 * tried the IMAP login with a user name and password, which only a POST can
 * carry: every POST counts, whatever its URI says (Roundcube forces the login
 * task on a client without a session and takes `_task`/`_action` from the
 * body, a cookie or the query in any spelling). A GET is a logged-in session
 * failing to re-authenticate; connection and TLS failures are the server's.
 */
const imapLoginFailed: Grammar = {
  id: 'F1',
  description: 'errors: IMAP Error: Login failed for USER [against HOST] from ADDR. SERVER-TEXT in FILE on line N (METHOD URI)',
  prefixes: ['IMAP Error: Login failed for '],
  tail: / on line \d+ \([A-Z]+ \S*\)$/,
  parse(text, options) {
    const tail = f1TailOf(text)
    // The fixed tail starts in the message, not in the space put in front.
    if (tail === null || tail.index === 0) return null
    const head = text.slice(0, tail.index)
    const c: Constraints = {shape: 'sentence', minAt: Math.max(1, lastLineStart(head) - 1), maxAt: Infinity, loginLc: options.loginLc ?? 2}
    return attribute('F1', 'failure', head, readings(head, c), f1User, f1Countable, options, null, Infinity, tail.method)
  },
}

/**
 * F4 — the third-party "fail2ban" plugin: `FAILED login for USER from ADDR`
 * (v1.1 adds a `[roundcube] ` prefix). Its v1.3 writes the raw
 * X-Forwarded-For header when there is one: a list, or anything the client
 * sent, so only a single address is believed.
 */
const pluginFailed: Grammar = {
  id: 'F4',
  description: 'plugin: FAILED login for USER from ADDR',
  prefixes: ['FAILED login for ', '[roundcube] FAILED login for '],
  tail: / from [\w.:%, -]*$/,
  parse(text, options) {
    const head = text
    const at = lastIndexOf(head, ' from ')
    // Index 0 is the space put in front: an empty user name is logged with two spaces, ` from ` at 1.
    if (at < 1 || at < lastLineStart(head) - 1) return null
    const raw = head.slice(at + 6)
    const ip = canonicalIp(raw)
    const user = head.slice(1, at)
    if (ip === null) {
      if (!/^[\w.:%, -]*$/.test(raw)) return null
      return result('F4', 'failure', null, user, null, false, 'the plugin wrote a list of addresses (its X-Forwarded-For): not believed')
    }
    const reading: Reading = {at, raw, ip, headers: null, rest: head.length}
    return attribute('F4', 'failure', head, {list: [reading], tooMany: false}, userBeforeFrom, PLUGIN_COUNTED, options)
  },
}

export const GRAMMARS: readonly Grammar[] = [imapLoginFailed, failedLogin, successfulLogin, pluginFailed]

/** Every fixed start, in the order of GRAMMARS and their prefixes, with its answer made once. */
const STARTS: readonly {text: string; found: {grammar: Grammar; prefix: number}}[] = GRAMMARS.flatMap((grammar) =>
  grammar.prefixes.map((text) => ({text, found: {grammar, prefix: text.length}})),
)

/** The grammar whose fixed start begins `body`, with the length of that start (a shared object: read it, do not change it). */
export function grammarOf(body: string): {readonly grammar: Grammar; readonly prefix: number} | null {
  for (const s of STARTS) if (body.startsWith(s.text)) return s.found
  return null
}
