/**
 * Property-based tests (fast-check) for the parser and the log reader.
 *
 * Example tests (parser.test.ts, reader.test.ts) pin the line shapes the
 * fact sheet documents; these properties throw generated input at the same
 * code: random bytes, real lines mutated the way an attacker or a broken
 * pipe would, user names built to frame other addresses, and logs appended
 * in arbitrary pieces.
 *
 * Every property has a fixed seed, so a run is reproducible and a failure
 * prints the seed and the shrunk counterexample. Environment:
 * - RCGUARD_PROPERTY_RUNS=N multiplies every numRuns (a long soak: 50, 200);
 * - RCGUARD_PROPERTY_SEED=S replaces the fixed seeds (explore other inputs).
 *
 * A property that found a bug stays here with node:test's `todo` option
 * naming the bug, so the suite stays green until src/ is fixed; remove the
 * option with the fix.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {appendFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import fc from 'fast-check'
import {
  DEFAULT_PARSE_OPTIONS,
  EntryParser,
  LineParser,
  MAX_LINE_BYTES,
  type LogFormat,
  type ParseOptions,
  type SessionPrefixMode,
} from '../../src/core/parser/parse.js'
import {ENVELOPE_IDS, type EnvelopeId} from '../../src/core/parser/envelopes.js'
import type {LoginEvent} from '../../src/core/parser/types.js'
import {canonicalIp} from '../../src/core/net/ip.js'
import {proxyList} from '../../src/core/parser/proxy.js'
import {readNewLines, type LogPosition} from '../../src/core/logreader/reader.js'
import {tempDir} from '../helpers/env.js'
import {params} from '../helpers/property.js'

// Run control: test/helpers/property.ts (params).

// ---------------------------------------------------------------------------
// Parsers

const NOW = Date.UTC(2026, 10, 25, 13, 0, 0)
const FORMATS: readonly LogFormat['format'][] = ['auto', ...ENVELOPE_IDS]
const MODES: readonly SessionPrefixMode[] = ['auto', 'required', 'optional']
const BEHIND_PROXY: ParseOptions = {
  countErrors: new Set([0, 1, 4]),
  trustedProxies: proxyList(['198.51.100.0/24', '2001:db8::/32', '127.0.0.0/8', '::1']),
}
const OPTION_SETS: readonly ParseOptions[] = [DEFAULT_PARSE_OPTIONS, BEHIND_PROXY]

function makeParser(format: LogFormat['format'], sessionPrefix: SessionPrefixMode, options: ParseOptions = DEFAULT_PARSE_OPTIONS, timezone?: string): LineParser {
  return new LineParser({format, ident: 'roundcube', sessionPrefix, ...(timezone === undefined ? {} : {timezone})}, options, {}, NOW)
}

const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'))
const decode = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8')
/** Bytes that fast-check prints readably in a counterexample (long ones summarised). */
function printable(b: Uint8Array): Uint8Array {
  const text = decode(b)
  const show = (): string =>
    b.length <= 160
      ? `bytes(${JSON.stringify(text)}${isUtf8(b) ? '' : `, hex ${Buffer.from(b).toString('hex')}`})`
      : `bytes(${JSON.stringify(text.slice(0, 8))}… ${text.length} UTF-16 units, ${b.length} bytes)`
  return Object.defineProperty(b, fc.toStringMethod, {value: show})
}
const isUtf8 = (b: Uint8Array): boolean => Buffer.from(decode(b), 'utf8').equals(Buffer.from(b))
const concat = (parts: readonly Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts))

/** What the reader hands the parser: split on LF, one trailing CR dropped. */
function physicalLines(text: string): string[] {
  return text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
}

/** The texts an address of `line` may come from: the line, and a journal record's decoded MESSAGE. */
function sourceTexts(line: string): string[] {
  if (!line.startsWith('{')) return [line]
  try {
    const rec = JSON.parse(line) as unknown
    if (rec !== null && typeof rec === 'object' && 'MESSAGE' in rec) {
      const m = (rec as {MESSAGE: unknown}).MESSAGE
      if (typeof m === 'string') return [line, m]
      if (Array.isArray(m) && m.every((b) => typeof b === 'number')) return [line, Buffer.from(m as number[]).toString('utf8')]
    }
  } catch {
    // not JSON: the line itself
  }
  return [line]
}

const IP_RUN = /[0-9A-Fa-f:.]+/g

/**
 * Whether canonical address `ip` is written somewhere in `text`, in any
 * spelling canonicalIp maps to it (upper case, uncompressed or
 * ::ffff:-mapped IPv6): some substring of a run of address characters.
 */
function addressOccurs(ip: string, text: string): boolean {
  if (text.toLowerCase().includes(ip)) return true
  for (const m of text.matchAll(IP_RUN)) {
    const run = m[0]
    if (!run.includes('.') && !run.includes(':')) continue
    for (let i = 0; i < run.length; i++) {
      for (let j = i + 2; j <= Math.min(run.length, i + 45); j++) {
        if (canonicalIp(run.slice(i, j)) === ip) return true
      }
    }
  }
  return false
}

/** Structural invariants every event must satisfy, whatever the input. */
function assertWellFormed(e: LoginEvent): void {
  assert.ok(['F1', 'F2', 'F3', 'F4'].includes(e.grammar), `grammar ${e.grammar}`)
  assert.equal(e.outcome, e.grammar === 'F3' ? 'success' : 'failure')
  assert.equal(typeof e.time, 'number')
  assert.ok(!Number.isNaN(e.time), 'time is NaN')
  assert.equal(typeof e.user, 'string')
  assert.equal(typeof e.reason, 'string')
  assert.ok(e.reason.length > 0, 'empty reason')
  if (e.ip !== null) assert.equal(canonicalIp(e.ip), e.ip, `address ${e.ip} is not canonical`)
  if (e.counted) {
    assert.notEqual(e.ip, null, 'counted without an address')
    assert.equal(e.outcome, 'failure', 'a success counted as a failure')
  }
  if (e.session !== null) assert.match(e.session, /^[A-Za-z0-9,-]{1,64}$/)
}

function assertNoInventedAddress(e: LoginEvent, line: string): void {
  if (e.ip === null) return
  const ip = e.ip
  assert.ok(sourceTexts(line).some((t) => addressOccurs(ip, t)), `address ${ip} does not occur in the line: ${JSON.stringify(line)}`)
}

/** A time every consumer can format: `new Date(time).toISOString()` must not throw. */
function assertValidTime(e: LoginEvent): void {
  assert.ok(Number.isFinite(new Date(e.time).getTime()), `time ${e.time} is not a valid date`)
}

// ---------------------------------------------------------------------------
// Generators: addresses, envelopes, composed lines

/** REMOTE_ADDR in the spellings a web server or a dual-stack socket may give. */
const ipText: fc.Arbitrary<string> = fc.oneof(
  {weight: 3, arbitrary: fc.ipV4()},
  {weight: 2, arbitrary: fc.ipV6()},
  {weight: 1, arbitrary: fc.ipV6().map((s) => s.toUpperCase())},
  {weight: 1, arbitrary: fc.ipV4().map((s) => `::ffff:${s}`)},
  {weight: 1, arbitrary: fc.constantFrom('2001:db8::25', '::1', 'fe80::1%eth0', '2001:DB8:0:0::0025', '::ffff:c633:6404', '127.0.0.1', '198.51.100.2', '0.0.0.0')},
)

const GRAMMAR_PREFIXES = ['IMAP Error: Login failed for ', 'Failed login for ', 'Successful login for ', 'FAILED login for ', '[roundcube] FAILED login for ']

/** Text around the message for each envelope except journal-json: [before, after]. */
const ENVELOPE_TEXT: Record<Exclude<EnvelopeId, 'journal-json'>, readonly (readonly [string, string])[]> = {
  file: [['[25-Nov-2026 13:00:00 +0000]: ', ''], ['[2026-11-25 08:44:43.062347 -0500]: ', ''], ['[25-Nov-2026 14:00:00 +0100]: ', ''], ['[25-Nov-2026 13:00:00]: ', '']],
  stdout: [['userlogins: ', ''], ['errors: ', ''], ['[25-Nov-2026 13:00:00] WARNING: [pool www] child 42 said into stdout: "userlogins: ', '"']],
  php: [['[25-Nov-2026 13:47:20 UTC] userlogins: ', ''], ['[25-Nov-2026 14:47:20 Europe/Berlin] errors: ', '']],
  syslog: [['Nov 25 13:44:56 mail roundcube: ', ''], ['Nov  5 03:04:05 mx1 roundcube[4242]: ', ''], ['Dec 31 23:59:59 mail roundcube: ', '']],
  rfc3339: [['2026-11-25T13:44:57.833801+00:00 mail roundcube: ', ''], ['2026-11-25T13:44:57+0000 mail roundcube[77]: ', ''], ['2026-11-25T13:44:57Z mail roundcube: ', '']],
}
const TEXT_ENVELOPES = Object.keys(ENVELOPE_TEXT) as Exclude<EnvelopeId, 'journal-json'>[]

/** A journalctl -o json record; MESSAGE as a string, or as bytes when it is not valid UTF-8 (as journald does). */
function journalRecord(message: Uint8Array, timestamp: string = String(NOW * 1000)): string {
  const valid = isUtf8(message)
  return JSON.stringify({
    __REALTIME_TIMESTAMP: timestamp,
    _PID: '4242',
    _COMM: 'apache2',
    _UID: '33',
    PRIORITY: '6',
    SYSLOG_FACILITY: '1',
    SYSLOG_IDENTIFIER: 'roundcube',
    MESSAGE: valid ? decode(message) : [...message],
  })
}

type Grammar = 'F1' | 'F2' | 'F3' | 'F4'

/** One valid line, as Roundcube (or the F4 plugin) writes it, with what a parser should find in it. */
interface Composed {
  envelope: EnvelopeId
  /** Envelope text around the message (empty for journal-json). */
  before: string
  after: string
  /** Session prefix and event text. */
  message: string
  grammar: Grammar
  /** Where USER is in `message` (UTF-16 indexes). */
  userStart: number
  userEnd: number
  /** REMOTE_ADDR as written, and canonical (null when empty). */
  realText: string
  real: string | null
  /** The address field carries a header group. */
  headers: boolean
  errorCode: number | null
  prefixed: boolean
}

const headerGroup: fc.Arbitrary<string> = fc
  .record({
    xri: fc.option(ipText, {nil: undefined}),
    xff: fc.option(fc.array(ipText, {minLength: 1, maxLength: 3}).map((a) => a.join(', ')), {nil: undefined}),
    spaced: fc.boolean(),
  })
  .filter((g) => g.xri !== undefined || g.xff !== undefined)
  .map(({xri, xff, spaced}) => {
    const items = [...(xri === undefined ? [] : [`X-Real-IP: ${xri}`]), ...(xff === undefined ? [] : [`X-Forwarded-For: ${xff}`])]
    return `${spaced ? ' ' : ''}(${items.join(',')})`
  })

const plainUser = fc.oneof(
  fc.constantFrom('alice@example.com', 'bob@example.com', '', 'zoë@xn--exmple-cua.com', 'o\'brien "x"', 'admin'),
  fc.string({maxLength: 16}).filter((s) => !s.includes('\n')),
)
const sid = fc.oneof(fc.stringMatching(/^[a-v0-9]{16}$/), fc.stringMatching(/^[0-9a-f]{32}$/), fc.constantFrom('no-session', '', 'k3v9x2pq-,Ab'))
const envelopeChoice = fc.oneof(
  {weight: 5, arbitrary: fc.constantFrom(...TEXT_ENVELOPES).chain((id) => fc.constantFrom(...ENVELOPE_TEXT[id]).map(([before, after]) => ({id: id as EnvelopeId, before, after})))},
  {weight: 1, arbitrary: fc.constant({id: 'journal-json' as EnvelopeId, before: '', after: ''})},
)

interface LineSpec {
  grammar?: Grammar
  headers?: boolean
  emptyAddress?: boolean
  user?: fc.Arbitrary<string>
}

function composed(spec: LineSpec = {}): fc.Arbitrary<Composed> {
  return fc
    .record({
      env: envelopeChoice,
      grammar: spec.grammar === undefined ? fc.constantFrom<Grammar>('F1', 'F2', 'F3', 'F4') : fc.constant(spec.grammar),
      user: spec.user ?? plainUser,
      ip: spec.emptyAddress === true ? fc.oneof({weight: 4, arbitrary: ipText}, {weight: 1, arbitrary: fc.constant('')}) : ipText,
      group: spec.headers === false ? fc.constant('') : spec.headers === true ? headerGroup : fc.oneof(fc.constant(''), headerGroup),
      sid,
      sp: fc.boolean(),
      code: fc.constantFrom(0, 0, 1, 4, -2, 2),
      against: fc.constantFrom('', ' against localhost', ' against imap.example.com', ' against [2001:db8::143]'),
      server: fc.constantFrom('AUTHENTICATE PLAIN: Authentication failed.', 'LOGIN: Authentication failed.', 'A0002 NO [AUTHENTICATIONFAILED] Authentication failed.', 'Could not connect to localhost:143: Connection refused'),
      request: fc.constantFrom('POST /?_task=login&_action=login', 'POST /?_task=login?_task=login&_action=login', 'GET /?_task=mail&_action=list&_remote=1'),
      plugin11: fc.boolean(),
    })
    .map(({env, grammar, user: typed, ip, group, sid, sp, code, against, server, request, plugin11}) => {
      // As Roundcube writes it: the errors log lowercases the user name (login_lc = 2), userlogins
      // keeps at most 256 bytes of it and marks the cut with "..." (1.2+).
      // Roundcube trims the name first (observed on 1.6.5: spaces, TAB and LF at either end are gone).
      let user = typed.replace(/^[ \t\n\r\0\x0B]+|[ \t\n\r\0\x0B]+$/g, '')
      if (grammar === 'F1') user = user.toLowerCase()
      if (grammar === 'F2' && Buffer.byteLength(user) > 256) user = `${Buffer.from(user).subarray(0, 256).toString('utf8')}...`
      const prefix = sp ? `<${(sid.replace('no-session', '') || 'k3v9x2pq').slice(0, 8)}> ` : ''
      let head: string
      let tail: string
      let errorCode: number | null = null
      const addr = `${ip}${group}`
      switch (grammar) {
        case 'F1':
          head = 'IMAP Error: Login failed for '
          tail = `${against} from ${addr}. ${server} in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (${request})`
          break
        case 'F2':
          head = 'Failed login for '
          tail = ` from ${addr} in session ${sid} (error: ${code})`
          errorCode = code
          break
        case 'F3':
          head = 'Successful login for '
          tail = ` (ID: 17) from ${addr} in session ${sid}`
          break
        case 'F4':
          head = plugin11 ? '[roundcube] FAILED login for ' : 'FAILED login for '
          tail = ` from ${ip === '' ? '192.0.2.10' : ip}`
          break
      }
      const realText = grammar === 'F4' && ip === '' ? '192.0.2.10' : ip
      const message = `${prefix}${head}${user}${tail}`
      const userStart = prefix.length + head.length
      return {
        envelope: env.id,
        before: env.before,
        after: env.after,
        message,
        grammar,
        userStart,
        userEnd: userStart + user.length,
        realText,
        real: realText === '' ? null : canonicalIp(realText),
        headers: grammar !== 'F4' && group !== '',
        errorCode,
        prefixed: sp,
      }
    })
}

const isFpm = (c: Composed): boolean => c.envelope === 'stdout' && c.before.includes(' said into ')
/** What JavaScript's `.` does not match without the s flag. */
const LINE_SEPARATORS = /[\r\n\u2028\u2029]/

/** The physical text of a composed line whose message is `message` (bytes). */
function render(c: Composed, message: Uint8Array): string {
  if (c.envelope === 'journal-json') return journalRecord(message)
  return `${c.before}${decode(message)}${c.after}`
}

// ---------------------------------------------------------------------------
// Generators: mutations

/** Attacker-controlled text: user names, header values, URIs. */
const attackerText: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      ' from 198.51.100.7', ')', '(', '(X-Forwarded-For: 203.0.113.9)', ' (X-Real-IP: 192.0.2.1,X-Forwarded-For: 10.0.0.1, 192.0.2.44)',
      ' in session zz (error: 0)', ' in session  (error: 4)', ' in session no-session', ' (error: 1)', '. ', '.', ' against h', ' from ',
      ' from  in session a (error: 0)', ' (ID: 3)', 'Failed login for ', 'FAILED login for ', 'IMAP Error: Login failed for ',
      'Successful login for ', '<k3v9x2pq> ', '[25-Nov-2026 13:00:00 +0000]: ', 'userlogins: ', 'Nov 25 13:44:56 mail roundcube: ',
      ' on line 1 (POST /?_task=login&_action=login)', ' in /x.php on line 9 (POST /?_task=login&_action=login)', '%eth0', '::', ':',
      '"', '\\', '{', '}', ']', '[', ' ', '  ', '\u00a0', '\u2028', '\ufeff', 'ü', '😀', '\u0000', '\x1b[31m',
    ),
  },
  {weight: 3, arbitrary: ipText.map((ip) => ` from ${ip}`)},
  {weight: 2, arbitrary: ipText},
  {weight: 1, arbitrary: fc.tuple(ipText, headerGroup).map(([ip, g]) => ` from ${ip}${g}`)},
  {weight: 2, arbitrary: fc.string({maxLength: 12})},
  {weight: 1, arbitrary: fc.string({unit: 'binary', maxLength: 8})},
)

/** A whole forged line after an LF, as an LF in a user name allows, for any envelope. */
const forgedLine: fc.Arbitrary<string> = fc
  .record({
    env: envelopeChoice,
    sp: fc.constantFrom('', '<abcdefgh> '),
    event: fc.tuple(fc.constantFrom(...GRAMMAR_PREFIXES), ipText).map(([g, ip]) =>
      g.startsWith('IMAP') ? `${g}victim from ${ip}. LOGIN: x in /x.php on line 1 (POST /?_task=login&_action=login)` : g.startsWith('Succ') ? `${g}victim (ID: 1) from ${ip} in session a` : g.includes('FAILED') ? `${g}victim from ${ip}` : `${g}victim from ${ip} in session a (error: 0)`,
    ),
    timestamp: fc.oneof(fc.constant(String(NOW * 1000)), fc.bigInt({min: -(10n ** 22n), max: 10n ** 22n}).map(String), fc.constantFrom('1e30', '-1e30', 'NaN', '')),
    close: fc.boolean(),
  })
  .map(({env, sp, event, timestamp, close}) => {
    const body = `${sp}${event}`
    const line = env.id === 'journal-json' ? journalRecord(utf8(body), timestamp) : `${env.before}${body}${env.after}`
    return `\n${line}${close ? '\n' : ''}`
  })

const invalidUtf8: fc.Arbitrary<Uint8Array> = fc
  .constantFrom([0xff], [0xfe, 0xff], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98], [0xc0, 0xaf], [0x80], [0xf4, 0x90, 0x80, 0x80])
  .map((a) => Uint8Array.from(a))

const longRun: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.constantFrom('A', '9', ' ', '.', ':', '(', ' from 1.2.3.4', ' in session ', '(X-Real-IP: ', ' from 203.0.113.1 (X-Forwarded-For: ', ' from 2001:db8::1', 'é'), fc.integer({min: 200, max: 20_000}))
  .map(([s, n]) => utf8(s.repeat(Math.ceil(n / s.length))))

const insertion: fc.Arbitrary<Uint8Array> = fc.oneof(
  {weight: 8, arbitrary: attackerText.map(utf8)},
  {weight: 2, arbitrary: fc.constantFrom('\n', '\r', '\t', '\r\n', '\n\n').map(utf8)},
  {weight: 2, arbitrary: invalidUtf8},
  {weight: 1, arbitrary: longRun},
  {weight: 2, arbitrary: forgedLine.map(utf8)},
)

type Mutation =
  | {kind: 'insert'; at: number; bytes: Uint8Array}
  | {kind: 'delete'; at: number; length: number}
  | {kind: 'replace'; at: number; bytes: Uint8Array}

function mutation(ins: fc.Arbitrary<Uint8Array>, byte: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Mutation> {
  return fc.oneof(
    {weight: 4, arbitrary: fc.record({kind: fc.constant('insert' as const), at: fc.nat(), bytes: ins})},
    {weight: 2, arbitrary: fc.record({kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({min: 1, max: 24})})},
    {weight: 2, arbitrary: fc.record({kind: fc.constant('replace' as const), at: fc.nat(), bytes: byte})},
  )
}

const anyByte = fc.oneof(fc.uint8Array({minLength: 1, maxLength: 1}), fc.constantFrom(' ', '.', ':', '(', ')', '1', 'a', '\n', '\r').map(utf8))
const mutations = fc.array(mutation(insertion, anyByte), {minLength: 1, maxLength: 6})

const hasLf = (b: Uint8Array): boolean => b.includes(0x0a)
const mutationsWithoutLf = fc.array(mutation(insertion.filter((b) => !hasLf(b)), anyByte.filter((b) => !hasLf(b))), {minLength: 1, maxLength: 6})

/**
 * Applies mutations to `data` at positions inside [lo, hi] (hi moves with
 * insertions and deletions). Returns the result and the new hi.
 */
function mutate(data: Uint8Array, ops: readonly Mutation[], lo = 0, hi = data.length): {data: Uint8Array; hi: number} {
  let d = Buffer.from(data)
  let end = hi
  for (const op of ops) {
    const span = end - lo
    if (op.kind === 'insert') {
      const at = lo + (op.at % (span + 1))
      d = Buffer.concat([d.subarray(0, at), op.bytes, d.subarray(at)])
      end += op.bytes.length
    } else {
      if (span === 0) continue
      const at = lo + (op.at % span)
      const length = op.kind === 'delete' ? Math.min(op.length, end - at) : Math.min(op.bytes.length, end - at)
      d = Buffer.concat([d.subarray(0, at), op.kind === 'replace' ? op.bytes.subarray(0, length) : new Uint8Array(0), d.subarray(at + length)])
      if (op.kind === 'delete') end -= length
    }
  }
  return {data: new Uint8Array(d), hi: end}
}

/** A composed line with mutations applied anywhere in its bytes (for journal records: in MESSAGE, then maybe in the JSON text). */
const mutatedLine = fc
  .record({
    line: composed({emptyAddress: true}),
    ops: mutations,
    jsonOps: fc.option(fc.array(mutation(fc.oneof(attackerText.map(utf8), fc.stringMatching(/^\d{1,8}$/).map(utf8)), anyByte), {minLength: 1, maxLength: 3}), {nil: undefined, freq: 4}),
  })
  .map(({line, ops, jsonOps}) => {
    if (line.envelope === 'journal-json') {
      const record = render(line, mutate(utf8(line.message), ops).data)
      return {line, text: jsonOps === undefined ? record : decode(mutate(utf8(record), jsonOps).data)}
    }
    return {line, text: decode(mutate(utf8(`${line.before}${line.message}${line.after}`), ops).data)}
  })

const parserChoice = fc.record({
  format: fc.constantFrom(...FORMATS),
  mode: fc.constantFrom(...MODES),
  options: fc.constantFrom(...OPTION_SETS),
  timezone: fc.constantFrom(undefined, 'UTC', 'America/New_York'),
})

/** Every event the reader + parser would produce from `text` (one parser, its state carried line to line), then the text as a single line. */
function parseAll(text: string, choice: {format: LogFormat['format']; mode: SessionPrefixMode; options: ParseOptions; timezone: string | undefined}): {line: string; event: LoginEvent}[] {
  const out: {line: string; event: LoginEvent}[] = []
  const parser = makeParser(choice.format, choice.mode, choice.options, choice.timezone)
  for (const line of physicalLines(text)) {
    const event = parseOrExplain(parser, line)
    if (event !== null) out.push({line, event})
  }
  const whole = parseOrExplain(makeParser(choice.format, choice.mode, choice.options, choice.timezone), text)
  if (whole !== null) out.push({line: text, event: whole})
  return out
}

/** parser.parse, with the line in the message when it throws. */
function parseOrExplain(parser: LineParser, line: string): LoginEvent | null {
  try {
    return parser.parse(line)
  } catch (err) {
    throw new Error(`LineParser.parse threw on ${JSON.stringify(line)}: ${String(err)}`, {cause: err})
  }
}

// ---------------------------------------------------------------------------
// 1. Random bytes never make the parser throw

const ALL_PARSERS: readonly (readonly [LogFormat['format'], SessionPrefixMode])[] = FORMATS.flatMap((f) => MODES.map((m) => [f, m] as const))

const envelopePrefix = fc.oneof(
  fc.constantFrom(...TEXT_ENVELOPES).chain((id) => fc.constantFrom(...ENVELOPE_TEXT[id]).map(([before]) => before)),
  fc.constant(''),
)

/** Random bytes; random bytes after a real envelope, session prefix and event prefix (so the grammars run); random journal records. */
const randomInput: fc.Arbitrary<Uint8Array> = fc.oneof(
  {weight: 3, arbitrary: fc.uint8Array({maxLength: 4096})},
  {
    weight: 3,
    arbitrary: fc
      .tuple(envelopePrefix, fc.constantFrom('', '<k3v9x2pq> '), fc.constantFrom(...GRAMMAR_PREFIXES), fc.uint8Array({maxLength: 2048}))
      .map(([e, sp, g, b]) => concat([utf8(`${e}${sp}${g}`), b])),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({
        __REALTIME_TIMESTAMP: fc.oneof(fc.constant(String(NOW * 1000)), fc.string(), fc.double(), fc.constant(null), fc.bigInt().map(String), fc.jsonValue()),
        SYSLOG_IDENTIFIER: fc.oneof(fc.constant('roundcube'), fc.jsonValue()),
        MESSAGE: fc.oneof(
          fc.tuple(fc.constantFrom(...GRAMMAR_PREFIXES), fc.string({unit: 'binary', maxLength: 200})).map(([g, s]) => `${g}${s}`),
          fc.array(fc.integer({min: -300, max: 300}), {maxLength: 200}),
          fc.array(fc.double(), {maxLength: 20}),
          fc.jsonValue(),
        ),
      })
      .map((rec) => utf8(JSON.stringify(rec))),
  },
)

test('1. random bytes never make LineParser.parse throw, for every format and session-prefix mode', () => {
  fc.assert(
    fc.property(randomInput, (bytes) => {
      const texts = [decode(bytes), Buffer.from(bytes).toString('latin1')]
      for (const [format, mode] of ALL_PARSERS) {
        const parser = makeParser(format, mode)
        for (const text of texts) {
          for (const line of [text, ...text.split('\n')]) {
            const e = parseOrExplain(parser, line)
            if (e !== null) assertWellFormed(e)
          }
        }
      }
    }),
    params(0x5eed01, 500),
  )
})

// ---------------------------------------------------------------------------
// 2. Mutated real lines: no throw, no invented address, rightmost REMOTE_ADDR

test('2a. mutated real lines never make the parser throw, and events stay well-formed', () => {
  fc.assert(
    fc.property(mutatedLine, parserChoice, ({text}, choice) => {
      for (const {event} of parseAll(text, choice)) assertWellFormed(event)
    }),
    params(0x5eed02, 1000),
  )
})

test('2b. mutated real lines: an event\'s address always occurs in the line (no address is invented)', () => {
  fc.assert(
    fc.property(mutatedLine, parserChoice, ({text}, choice) => {
      for (const {line, event} of parseAll(text, choice)) assertNoInventedAddress(event, line)
    }),
    params(0x5eed03, 1000),
  )
})

test('2c. unmutated composed lines parse to their own REMOTE_ADDR (the generator is sound)', () => {
  fc.assert(
    fc.property(composed(), (c) => {
      const e = makeParser(c.envelope, 'optional').parse(render(c, utf8(c.message)))
      assert.ok(e !== null, `not recognised: ${render(c, utf8(c.message))}`)
      assert.equal(e.grammar, c.grammar)
      if (c.grammar === 'F4' || !c.headers) assert.equal(e.ip, c.real)
      if (c.grammar === 'F2' && !c.headers) assert.equal(e.counted, [0, 1, 4].includes(c.errorCode ?? NaN))
    }),
    params(0x5eed04, 300),
  )
})

test('2d. mutations inside the user name of an F2 line without header group keep the real REMOTE_ADDR (rightmost candidate)', () => {
  let counted = 0
  let runs = 0
  fc.assert(
    fc.property(
      composed({grammar: 'F2', headers: false, emptyAddress: true}),
      mutationsWithoutLf,
      fc.constantFrom<SessionPrefixMode>('auto', 'optional', 'required'),
      (c, ops, mode) => {
        runs++
        const message = utf8(c.message)
        const lo = Buffer.byteLength(c.message.slice(0, c.userStart))
        const hi = Buffer.byteLength(c.message.slice(0, c.userEnd))
        const mutated = mutate(message, ops, lo, hi).data
        // A journal MESSAGE that is not valid UTF-8 is written as a byte array, which
        // the parser does not read at all: property 5, kept apart so this one guards the
        // rest. Drop this exclusion when property 5 loses its todo.
        const line = render(c, mutated)
        // A CR in the user name of a php-fpm-decorated line hides it: property 6.
        // Drop this exclusion when property 6 loses its todo.
        const e = makeParser(c.envelope, mode).parse(line)
        assert.ok(e !== null, `the real tail is intact but the line is not recognised: ${JSON.stringify(line)}`)
        assert.equal(e.grammar, 'F2')
        assert.equal(e.ip, c.real, `address ${e.ip} instead of REMOTE_ADDR ${c.realText}: ${JSON.stringify(line)}`)
        const expected = c.real !== null && [0, 1, 4].includes(c.errorCode ?? NaN) && (c.prefixed || mode !== 'required')
        assert.equal(e.counted, expected, `counted: ${e.reason}`)
        if (e.counted) counted++
      },
    ),
    params(0x5eed05, 800),
  )
  assert.ok(counted > runs / 4, `only ${counted} of ${runs} generated lines were counted: the property is nearly vacuous`)
})

// ---------------------------------------------------------------------------
// 3. Framing: a user name cannot make another address counted

/** Pieces of a hostile user name: other addresses, fake tails, header groups, brackets, noise. No LF. */
const framingFragment: fc.Arbitrary<string> = fc.oneof(
  {weight: 4, arbitrary: ipText.map((ip) => ` from ${ip}`)},
  {weight: 2, arbitrary: ipText},
  {weight: 2, arbitrary: fc.tuple(ipText, headerGroup).map(([ip, g]) => ` from ${ip}${g}`)},
  {weight: 2, arbitrary: fc.tuple(sid, fc.constantFrom('0', '1', '4', '-2')).map(([s, c]) => ` in session ${s} (error: ${c})`)},
  {weight: 1, arbitrary: headerGroup},
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      ' from ', ' in session ', ' (error: 0)', '(X-Forwarded-For: ', '(X-Real-IP: ', ')', '(', ' ', '.', '. ', ',', 'X-Forwarded-For: 203.0.113.9',
      'Failed login for ', '[25-Nov-2026 13:00:00 +0000]: ', '<abcdefgh> ', 'victim@example.com', '\r', '\t', 'no-session', ' (ID: 1)',
      ' from  in session x (error: 0)', ' from 127.0.0.1 (X-Forwarded-For: 203.0.113.1) in session zzz (error: 0)',
    ),
  },
  {weight: 2, arbitrary: fc.string({maxLength: 8}).filter((s) => !s.includes('\n'))},
)
const hostileUser = fc.array(framingFragment, {maxLength: 14}).map((a) => a.join(''))

test('3. framing: whatever the user name of an F2 line holds (no LF), a counted event\'s address is the real REMOTE_ADDR', () => {
  let counted = 0
  let runs = 0
  fc.assert(
    fc.property(
      composed({grammar: 'F2', user: hostileUser, emptyAddress: true}),
      fc.constantFrom<SessionPrefixMode>('auto', 'optional', 'required'),
      (c, mode) => {
        // php-fpm's decoration with a line separator in the message is not recognised
        // at all: property 6, kept apart so this one guards the rest. Drop this
        // exclusion when property 6 loses its todo.
        runs++
        const line = render(c, utf8(c.message))
        const e = makeParser(c.envelope, mode).parse(line)
        assert.ok(e !== null, `not recognised: ${JSON.stringify(line)}`)
        if (e.counted) {
          counted++
          assert.equal(e.ip, c.real, `counted ${e.ip}, REMOTE_ADDR is ${c.realText}: ${JSON.stringify(line)}`)
        }
        if (!c.headers) assert.equal(e.ip, c.real, `address ${e.ip}, REMOTE_ADDR is ${c.realText}: ${JSON.stringify(line)}`)
      },
    ),
    params(0x5eed06, 1000),
  )
  assert.ok(counted > runs / 4, `only ${counted} of ${runs} lines were counted: the property is nearly vacuous`)
})

test('3b. framing in F1: whatever the user name holds (no LF), a counted event\'s address is the real REMOTE_ADDR', () => {
  fc.assert(
    fc.property(composed({grammar: 'F1', user: hostileUser.map((u) => u.toLowerCase())}), (c) => {
      const line = render(c, utf8(c.message))
      const e = makeParser(c.envelope, 'optional').parse(line)
      assert.ok(e !== null, `not recognised: ${JSON.stringify(line)}`)
      if (e.counted) assert.equal(e.ip, c.real, `counted ${e.ip}, REMOTE_ADDR is ${c.realText}: ${JSON.stringify(line)}`)
    }),
    params(0x5eed07, 500),
  )
})

// ---------------------------------------------------------------------------
// 4. Reader: appends in arbitrary pieces, each line delivered exactly once

/** Line contents (no LF): text, any code points, raw bytes (invalid UTF-8), CRs, sometimes a few KB. */
const lineContent: fc.Arbitrary<Uint8Array> = fc
  .oneof(
    {weight: 4, arbitrary: fc.string({maxLength: 60}).map(utf8)},
    {weight: 2, arbitrary: fc.string({unit: 'binary', maxLength: 30}).map(utf8)},
    {weight: 2, arbitrary: fc.uint8Array({maxLength: 40})},
    {weight: 1, arbitrary: fc.constantFrom('', '\r', 'a\r', 'b\rc', '\r\r', 'é\r').map(utf8)},
    {weight: 1, arbitrary: fc.tuple(fc.constantFrom('x', 'é', '😀', '\r'), fc.integer({min: 100, max: 3000})).map(([s, n]) => utf8(s.repeat(n)))},
  )
  .map((b) => printable(b.filter((x) => x !== 0x0a)))

/** What the reader should deliver for a line's bytes: UTF-8 with replacement, one trailing CR dropped. */
function delivered(bytes: Uint8Array): string {
  const s = decode(bytes)
  return s.endsWith('\r') ? s.slice(0, -1) : s
}

interface ReaderCase {
  lines: Uint8Array[]
  /** A last line written without its LF. */
  partial: Uint8Array | undefined
  /** Where the bytes are cut into appends. */
  cuts: number[]
}

const readerCase = (line: fc.Arbitrary<Uint8Array>, maxLines: number): fc.Arbitrary<ReaderCase> =>
  fc.record({
    lines: fc.array(line, {maxLength: maxLines}),
    partial: fc.option(line.filter((b) => b.length > 0), {nil: undefined}),
    cuts: fc.array(fc.nat(), {maxLength: 12}),
  })

/**
 * Writes the case's bytes in appends, calling readNewLines after each with
 * the saved position, and checks after every read: the lines delivered so
 * far are exactly the complete lines written so far (the skipped long ones
 * excepted), numbered from 1, and the position is just after the last LF.
 */
async function checkReader(file: string, c: ReaderCase): Promise<void> {
  const LF = Uint8Array.of(0x0a)
  const all = concat([...c.lines.flatMap((l) => [l, LF]), c.partial ?? new Uint8Array(0)])
  const cuts = [...new Set(c.cuts.map((n) => n % (all.length + 1)))].sort((a, b) => a - b)
  const bounds = [...cuts, all.length]
  // Byte offset just after each complete line.
  const ends: number[] = []
  let off = 0
  for (const l of c.lines) {
    off += l.length + 1
    ends.push(off)
  }
  const got: [string, number][] = []
  let longLines = 0
  let position: LogPosition | undefined
  writeFileSync(file, '')
  const read = async (): Promise<void> => {
    const r = await readNewLines(file, position, (text, no) => got.push([text, no]))
    assert.deepEqual(r.warnings.filter((w) => !w.includes('longer than')), [])
    longLines += r.longLines
    position = r.position
  }
  await read()
  let written = 0
  for (const b of bounds) {
    if (b > written) appendFileSync(file, all.subarray(written, b))
    written = b
    await read()
    const complete = ends.filter((e) => e <= written).length
    const expected = c.lines.slice(0, complete).map((l, i) => [l, i + 1] as const).filter(([l]) => l.length <= MAX_LINE_BYTES).map(([l, i]) => [delivered(l), i])
    assert.deepEqual(got, expected, `after ${written} of ${all.length} bytes`)
    assert.equal(longLines, c.lines.slice(0, complete).filter((l) => l.length > MAX_LINE_BYTES).length, 'long lines skipped')
    assert.equal(position?.offset, complete === 0 ? 0 : ends[complete - 1], 'position.offset is just after the last complete line')
    assert.equal(position?.line, complete, 'position.line counts the complete lines')
  }
  if (c.partial !== undefined) {
    // The half-written last line was not delivered; its LF completes it, once.
    appendFileSync(file, LF)
    await read()
    const n = c.lines.length + 1
    if (c.partial.length <= MAX_LINE_BYTES) assert.deepEqual(got.at(-1), [delivered(c.partial), n])
    assert.equal(got.filter(([, no]) => no === n).length, c.partial.length <= MAX_LINE_BYTES ? 1 : 0)
    assert.equal(position?.line, n)
    await read()
    assert.equal(got.filter(([, no]) => no === n).length, c.partial.length <= MAX_LINE_BYTES ? 1 : 0, 'delivered again on the next read')
  }
}

test('4. reader: lines appended in arbitrary pieces are each delivered once, complete, in order, numbered from 1', async (t) => {
  const dir = tempDir(t, 'rcguard-property-')
  let n = 0
  await fc.assert(
    fc.asyncProperty(readerCase(lineContent, 30), async (c) => {
      const file = join(dir, `log-${n++}`)
      try {
        await checkReader(file, c)
      } finally {
        rmSync(file, {force: true})
      }
    }),
    params(0x5eed08, 200),
  )
})

test('3c. framing with an LF in the user name: no physical line of the entry counts an address other than REMOTE_ADDR, even with session prefixes required', () => {
  fc.assert(
    fc.property(
      composed({grammar: 'F2', headers: false, user: fc.tuple(hostileUser, hostileUser).map(([a, b]) => `${a}\n${b}`)}).filter((c) => c.prefixed),
      (c) => {
        // What the reader delivers from the one entry Roundcube wrote: two or more physical lines.
        // The scan reads them through an EntryParser, which looks one entry ahead.
        const entries = new EntryParser(makeParser(c.envelope === 'journal-json' ? 'file' : c.envelope, 'required'))
        // syslog (PHP >= 7.3) sends each piece of a split message as a record of its own, envelope and all.
        const record = c.envelope === 'syslog' || c.envelope === 'rfc3339'
        const text =
          c.envelope === 'journal-json'
            ? `[25-Nov-2026 13:00:00 +0000]: ${c.message}`
            : record
              ? c.message.split('\n').map((piece, i) => (i === 0 ? render(c, utf8(piece)) : `${c.before}${piece}`)).join('\n')
              : render(c, utf8(c.message))
        const check = ({event: e, text: line}: {event: LoginEvent; text: string}) => {
          if (e.counted) assert.equal(e.ip, c.real, `counted ${e.ip}, REMOTE_ADDR is ${c.realText}, from line ${JSON.stringify(line)}`)
        }
        physicalLines(text).forEach((line, i) => entries.feed(line, i + 1, 'log', check))
        entries.finish(check)
      },
    ),
    params(0x5eed09, 300),
  )
})

// ---------------------------------------------------------------------------
// 4b. Reader: the line-length cap

/** Lines around the cap, in characters of 1 to 4 UTF-8 bytes. */
const nearCapLine: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.constantFrom('x', 'é', '€', '😀'), fc.integer({min: -6, max: 6}))
  .map(([ch, delta]) => {
    const size = Buffer.byteLength(ch)
    return printable(utf8(ch.repeat(Math.max(0, Math.floor((MAX_LINE_BYTES + delta) / size) + (delta > 0 ? 1 : 0)))))
  })

test('4b. reader: a line longer than MAX_LINE_BYTES bytes is skipped and counted, a shorter one delivered, wherever the appends cut', async (t) => {
  const dir = tempDir(t, 'rcguard-property-')
  let n = 0
  await fc.assert(
    fc.asyncProperty(readerCase(fc.oneof({weight: 2, arbitrary: lineContent}, {weight: 1, arbitrary: nearCapLine}), 6), async (c) => {
      const file = join(dir, `long-${n++}`)
      try {
        await checkReader(file, c)
      } finally {
        rmSync(file, {force: true})
      }
    }),
    params(0x5eed0a, 40),
  )
})

// ---------------------------------------------------------------------------
// 5.-7. Representations of the same message, and event times

test('5. journal-json: a MESSAGE journald wrote as a byte array (not valid UTF-8) is parsed like the same text', () => {
  fc.assert(
    fc.property(composed(), fc.array(fc.record({kind: fc.constant('insert' as const), at: fc.nat(), bytes: invalidUtf8}), {minLength: 1, maxLength: 3}), (c, ops) => {
      const message = mutate(utf8(c.message), ops).data
      const asBytes = journalRecord(message)
      const asText = JSON.stringify({...(JSON.parse(asBytes) as object), MESSAGE: decode(message)})
      assert.deepEqual(makeParser('journal-json', 'optional').parse(asBytes), makeParser('journal-json', 'optional').parse(asText), asBytes)
    }),
    params(0x5eed0b, 300),
  )
})

/** User names and header values with the characters JavaScript's `.` stops at, among others. */
const separatorUser = fc.array(fc.oneof(framingFragment, fc.constantFrom('\r', '\u2028', '\u2029', '\u0085', '\t', '\v', '\f')), {maxLength: 6}).map((a) => a.join(''))

test('6. stdout: a line inside php-fpm\'s "child N said into stdout" decoration is parsed like the same line undecorated', () => {
  const fpm = ENVELOPE_TEXT.stdout.find(([before]) => before.includes(' said into '))
  assert.ok(fpm !== undefined)
  fc.assert(
    fc.property(composed({user: separatorUser}), (c) => {
      const plain = makeParser('stdout', 'optional').parse(`userlogins: ${c.message}`)
      const line = `${fpm[0]}${c.message}${fpm[1]}`
      assert.deepEqual(makeParser('stdout', 'optional').parse(line), plain, JSON.stringify(line))
    }),
    params(0x5eed0c, 300),
  )
})

test('7. every event\'s time is a valid date (reports format it with toISOString)', () => {
  fc.assert(
    fc.property(fc.oneof(mutatedLine.map(({text}) => text), randomInput.map(decode)), parserChoice, (text, choice) => {
      for (const {event} of parseAll(text, choice)) assertValidTime(event)
    }),
    params(0x5eed0d, 800),
  )
})
