/**
 * The fast path of a scan gives the same events as the plain one.
 *
 * Fast: the log's bytes pushed in chunks of random sizes through the
 * reader's LineSplitter, with the entry parser's `skipping` handler: lines
 * the parser would pass over are judged from their bytes and never decoded.
 * Plain: the same bytes cut at every LF by this test, each line decoded and
 * fed to a fresh parser one at a time (EntryParser.feed, no byte filter).
 *
 * Logs mix every envelope and grammar, lines of other programs and other
 * Roundcube errors, entries split by a user name's line feeds, and hostile
 * user names: line feeds, CR, NUL, invalid UTF-8, ` from ADDR`, whole forged
 * lines, journal records whose MESSAGE is bytes, lines longer than the
 * parser's limit; chunk boundaries fall anywhere, inside lines and inside
 * multi-byte characters. Every event (with its line number and text), the
 * parser's learnt state and the reader's counts must be equal.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {LineSplitter} from '../../src/core/logreader/lines.js'
import {EntryParser, LineParser, MAX_LINE_BYTES, type LogFormat, type SourcedLine} from '../../src/core/parser/parse.js'
import {proxyList} from '../../src/core/parser/proxy.js'
import type {ParseOptions} from '../../src/core/parser/grammars.js'
import {params} from '../helpers/property.js'

const NOW = Date.UTC(2026, 10, 25, 14, 0, 0)
const FILE = '/var/log/roundcube/errors.log'

const b = (s: string): Buffer => Buffer.from(s, 'utf8')

/** Hostile pieces of user names (bytes: some are not UTF-8). */
const userPiece: fc.Arbitrary<Buffer> = fc.oneof(
  {weight: 4, arbitrary: fc.constantFrom('alice@example.com', 'bob', '', 'zoë@xn--exmple-cua.com', 'admin', 'x y').map(b)},
  {weight: 1, arbitrary: fc.string({maxLength: 12}).map(b)},
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(
        '\n',
        '\r',
        '\r\n',
        '\0',
        ' from 192.0.2.10',
        ' from 192.0.2.10 (X-Forwarded-For: 203.0.113.9)',
        '. AUTHENTICATE PLAIN: x in /a.php on line 1 (POST /?_task=login&_action=login)',
        ' in session abcdefgh (error: 0)',
        '\n[25-Nov-2026 13:00:02 +0000]: <aaaaaaaa> IMAP Error: Login failed for v against localhost from 192.0.2.99. LOGIN: no in /b.php on line 2 (POST /)',
        '\n[25-Nov-2026 13:00:02 +0000]: Failed login for v from 192.0.2.99 in session q (error: 0)',
        '\nNov 25 13:00:02 mail roundcube: <aaaaaaaa> FAILED login for v from 192.0.2.99',
        '\nerrors: IMAP Error: Login failed for v from 192.0.2.99. LOGIN: no in /c.php on line 3 (POST /)',
        '\nsome text without a login',
        '\n{"SYSLOG_IDENTIFIER":"roundcube","__REALTIME_TIMESTAMP":"1795611602000000","_UID":"33","_PID":"7","MESSAGE":"Failed login for v from 192.0.2.99 in session q (error: 0)"}',
        '\n',
        ' for ',
      )
      .map(b),
  },
  {weight: 1, arbitrary: fc.constantFrom(Buffer.from([0xff]), Buffer.from([0xe2, 0x82]), Buffer.from([0xc3]), Buffer.from([0xf0, 0x9f, 0x98, 0x80]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xe2, 0x82, 0xac]))},
)
const userName: fc.Arbitrary<Buffer> = fc.array(userPiece, {maxLength: 5}).map((p) => Buffer.concat(p))

const addr = fc.constantFrom('192.0.2.10', '203.0.113.7', '2001:db8::7', '198.51.100.2', '', 'x', '192.0.2.10 (X-Forwarded-For: 203.0.113.9)', '198.51.100.2(X-Real-IP: 203.0.113.66)')
const session = fc.constantFrom('k3v9x2pq', 'aaaaaaaa', 'zz', 'k3v9x2pq-,Ab')

/** The message of one entry (after envelope and session prefix), as bytes. */
const message: fc.Arbitrary<Buffer> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({grammar: fc.constantFrom('F1', 'F2', 'F3', 'F4', 'F4b'), user: userName, addr, sid: session, code: fc.constantFrom('0', '1', '4', '-2'), req: fc.constantFrom('POST /?_task=login&_action=login', 'GET /?_task=mail'), server: fc.constantFrom('AUTHENTICATE PLAIN: Authentication failed.', 'Could not connect to localhost:143: Connection refused'), tail: fc.constantFrom(true, true, true, false)})
      .map(({grammar, user, addr, sid, code, req, server, tail}) => {
        switch (grammar) {
          case 'F1':
            return Buffer.concat([b('IMAP Error: Login failed for '), user, b(` against localhost from ${addr}`), b(tail ? `. ${server} in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (${req})` : '')])
          case 'F2':
            return Buffer.concat([b('Failed login for '), user, b(` from ${addr}`), b(tail ? ` in session ${sid}a7m1c0de (error: ${code})` : '')])
          case 'F3':
            return Buffer.concat([b('Successful login for '), user, b(` (ID: 4) from ${addr}`), b(tail ? ` in session ${sid}a7m1c0de` : '')])
          case 'F4':
            return Buffer.concat([b('FAILED login for '), user, b(` from ${addr}`)])
          default:
            return Buffer.concat([b('[roundcube] FAILED login for '), user, b(` from ${addr}`)])
        }
      }),
  },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(
        'PHP Warning:  Undefined array key "name" in /usr/share/roundcube/program/actions/mail/index.php on line 1234 (GET /?_task=mail)',
        "SMTP Error: Failed to add recipient 'nobody@example.invalid' for the message in /r.php on line 1783 (POST /?_task=mail)",
        'PHP Fatal error:  Uncaught Error: Call to a member function get_quota() on null\nStack trace:\n#0 {main}\n  thrown in /x.php on line 612',
        'DB Error: SQLSTATE[HY000] [2002] Connection refused in /usr/share/roundcube/program/lib/Roundcube/rcube_db.php on line 200 (GET /?_task=login)',
        'IMAP Error: Empty startup greeting (localhost:143) for nobody',
        '',
      )
      .map(b),
  },
  {weight: 1, arbitrary: fc.uint8Array({maxLength: 40}).map((a) => Buffer.from(a))},
)

/** Envelopes (and other programs' lines) around a message, as [before, after]. */
const envelopeText = fc.constantFrom(
  ['[25-Nov-2026 13:00:00 +0000]: ', ''],
  ['[25-Nov-2026 13:00:01 +0000]: ', ''],
  ['[25-Nov-2026 13:00:00]: ', ''],
  ['[garbage]: ', ''],
  ['errors: ', ''],
  ['userlogins: ', ''],
  ['[25-Nov-2026 13:00:00] WARNING: [pool www] child 42 said into stdout: "userlogins: ', '"'],
  ['[25-Nov-2026 13:47:20 UTC] userlogins: ', ''],
  ['Nov 25 13:44:56 mail roundcube: ', ''],
  ['Nov 25 13:44:56 mail roundcube[4242]: ', ''],
  ['Nov 25 13:44:57 mail postfix[17]: ', ''],
  ['2026-11-25T13:44:57.833801+00:00 mail roundcube: ', ''],
  ['2026-11-25T13:44:57.833802+00:00 mail roundcube[4242]: ', ''],
  ['', ''],
)

/** A journal record of the message: MESSAGE as a string, or as bytes when it is not valid UTF-8 (as journald writes it). */
function journal(msg: Buffer, uid: string): Buffer {
  const text = msg.toString('utf8')
  const valid = Buffer.from(text, 'utf8').equals(msg)
  return b(JSON.stringify({__REALTIME_TIMESTAMP: String(NOW * 1000 - 5_000_000), SYSLOG_IDENTIFIER: 'roundcube', _UID: uid, _PID: '4242', _COMM: 'php-fpm', MESSAGE: valid ? text : [...msg]}))
}

/** One physical write: an entry (envelope, maybe a session prefix, message), possibly spanning lines, or raw bytes. */
const write: fc.Arbitrary<Buffer> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({env: envelopeText, prefix: fc.constantFrom('', '<k3v9x2pq> ', '<aaaaaaaa> ', '<zz> '), msg: message, eol: fc.constantFrom('\n', '\n', '\n', '\r\n')}).map(({env, prefix, msg, eol}) => Buffer.concat([b(env[0] ?? ''), b(prefix), msg, b(env[1] ?? ''), b(eol)])),
  },
  {weight: 2, arbitrary: fc.record({prefix: fc.constantFrom('', '<k3v9x2pq> '), msg: message, uid: fc.constantFrom('33', '0')}).map(({prefix, msg, uid}) => Buffer.concat([journal(Buffer.concat([b(prefix), msg]), uid), b('\n')]))},
  {weight: 1, arbitrary: fc.uint8Array({maxLength: 30}).map((a) => Buffer.concat([Buffer.from(a), b('\n')]))},
  // Longer than the parser looks at: skipped by the reader, in both paths.
  {weight: 1, arbitrary: fc.constantFrom(b(`[25-Nov-2026 13:00:00 +0000]: <k3v9x2pq> Failed login for ${'é'.repeat(MAX_LINE_BYTES / 2)} from 192.0.2.10 in session k3v9x2pq (error: 0)\n`))},
)

/** A log's bytes, shown in a counterexample as text (long runs shortened). */
class Log {
  constructor(readonly bytes: Buffer) {}

  [fc.toStringMethod](): string {
    return JSON.stringify(this.bytes.toString('latin1').replace(/(.{1,2}?)\1{15,}/gs, (run, c: string) => `${c.repeat(3)}…(${run.length} characters)`))
  }
}

const logBytes: fc.Arbitrary<Log> = fc
  .tuple(fc.array(write, {maxLength: 24}), fc.constantFrom('', 'partial last line', '[25-Nov-2026 13:00:09 +0000]: <k3v9x2pq> FAILED login for x from 192.0.2.1'))
  .map(([w, last]) => new Log(Buffer.concat([...w, b(last)])))

interface Setup {
  format: LogFormat
  options: ParseOptions
  /** The file is finished (a rotated copy): a last line without LF is a line too. */
  finished: boolean
}

const setup: fc.Arbitrary<Setup> = fc
  .record({
    format: fc.constantFrom<LogFormat['format']>('auto', 'auto', 'auto', 'file', 'syslog', 'rfc3339', 'journal-json', 'stdout', 'php'),
    sessionPrefix: fc.constantFrom<LogFormat['sessionPrefix']>('auto', 'auto', 'required', 'optional'),
    proxies: fc.boolean(),
    finished: fc.boolean(),
  })
  .map(({format, sessionPrefix, proxies, finished}) => ({
    format: {format, ident: 'roundcube', sessionPrefix, journalTrust: {uid: [33]}},
    options: {countErrors: new Set([0, 1, 4]), trustedProxies: proxyList(proxies ? ['198.51.100.2'] : [])},
    finished,
  }))

interface Outcome {
  events: SourcedLine[]
  state: unknown
  lines: number
  longLines: number
}

/** Plain: cut at LF, drop one trailing CR, pass over lines longer than the limit, decode and feed each line. */
function plain(bytes: Buffer, s: Setup): Outcome {
  const entries = new EntryParser(new LineParser(s.format, s.options, {}, NOW))
  const events: SourcedLine[] = []
  const emit = (l: SourcedLine): void => {
    events.push(l)
  }
  let lineNo = 0
  let longLines = 0
  let from = 0
  const take = (end: number): void => {
    lineNo++
    if (end - from > MAX_LINE_BYTES) {
      longLines++
      return
    }
    const stop = end > from && bytes[end - 1] === 0x0d ? end - 1 : end
    entries.feed(bytes.toString('utf8', from, stop), lineNo, FILE, emit, from)
  }
  for (let nl = bytes.indexOf(0x0a); nl !== -1; nl = bytes.indexOf(0x0a, from)) {
    take(nl)
    from = nl + 1
  }
  if (s.finished && from < bytes.length) take(bytes.length)
  entries.finish(emit)
  return {events, state: {...entries.state}, lines: lineNo, longLines}
}

/** Fast: the reader's splitter over chunks, with the parser's byte filter. */
function fast(bytes: Buffer, cuts: number[], s: Setup): Outcome {
  const entries = new EntryParser(new LineParser(s.format, s.options, {}, NOW))
  const events: SourcedLine[] = []
  const emit = (l: SourcedLine): void => {
    events.push(l)
  }
  const splitter = new LineSplitter(FILE, 0, entries.skipping((text, lineNo, file, offset) => entries.feed(text, lineNo, file, emit, offset)))
  let at = 0
  for (const cut of [...cuts, bytes.length]) {
    // A chunk the reader filled: its buffer is reused afterwards (as readLines does).
    const chunk = Buffer.from(bytes.subarray(at, cut))
    splitter.push(chunk)
    chunk.fill(0x2a)
    at = cut
  }
  if (s.finished) splitter.finish()
  entries.finish(emit)
  return {events, state: {...entries.state}, lines: splitter.lines, longLines: splitter.longLines}
}

/** Chunk boundaries: anywhere, and just inside multi-byte characters. */
function cutsOf(bytes: Buffer): fc.Arbitrary<number[]> {
  const inside: number[] = []
  for (let i = 1; i < bytes.length; i++) if ((bytes[i] ?? 0) >= 0x80 && (bytes[i] ?? 0) < 0xc0) inside.push(i)
  const anywhere = fc.nat(bytes.length)
  const pos = inside.length === 0 ? anywhere : fc.oneof(anywhere, fc.constantFrom(...inside))
  return fc.array(pos, {maxLength: 12}).map((c) => [...new Set(c)].sort((x, y) => x - y))
}

test('the fast path (chunks, lines judged from their bytes) gives the events of the plain one (each line decoded and fed)', () => {
  fc.assert(
    fc.property(
      logBytes.chain((log) => fc.tuple(fc.constant(log), cutsOf(log.bytes), setup)),
      ([log, cuts, s]) => {
        const want = plain(log.bytes, s)
        const got = fast(log.bytes, cuts, s)
        assert.deepEqual(got, want)
      },
    ),
    params(0xfa57, 400),
  )
})
