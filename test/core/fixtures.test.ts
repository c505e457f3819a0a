/**
 * The annotated fixture corpus (test/fixtures/lines/*.log, format in its
 * README.md): every line of every file goes, in file order, through one
 * LineParser per file, and what the parser makes of it must be exactly what
 * the annotation above it says. The corpus must keep covering every grammar
 * and every envelope the parser knows.
 *
 * Also: every composed example of the shared format document
 * (../shared/roundcube-log-formats.md beside the clone, sections 2 and 4)
 * parses to a login event.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {proxyList} from '../../src/core/parser/proxy.js'
import {ENVELOPE_IDS} from '../../src/core/parser/envelopes.js'
import {GRAMMARS} from '../../src/core/parser/grammars.js'
import {DEFAULT_LOG_FORMAT, DEFAULT_PARSE_OPTIONS, LineParser, type LogFormat, type ParseOptions} from '../../src/core/parser/parse.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const FIXTURES = join(ROOT, 'test', 'fixtures', 'lines')
const SPEC = resolve(ROOT, '..', 'shared', 'roundcube-log-formats.md')

// ---------------------------------------------------------------------------
// The fixture format (documented in test/fixtures/lines/README.md)
// ---------------------------------------------------------------------------

type Verdict = 'counted' | 'not-counted' | 'none'

interface Expectation {
  verdict: Verdict
  /** The log line is written with escapes (\t \r \\ \xNN). */
  escaped: boolean
  ip?: string | null
  user?: string
  time?: number
  grammar?: string
  envelope?: string
  outcome?: string
  error?: number | null
  session?: string | null
  reason?: string
}

interface FixtureLine {
  /** Physical line number of the log line in the fixture file (1-based). */
  no: number
  /** The line as the log reader would hand it to the parser. */
  text: string
  expect: Expectation
}

interface Fixture {
  name: string
  format: LogFormat
  options: ParseOptions
  now: number
  lines: FixtureLine[]
}

class FixtureError extends Error {}

const VERDICTS = new Set<string>(['counted', 'not-counted', 'none'])
const HEADER_KEYS = new Set(['format', 'ident', 'timezone', 'now', 'sessionPrefix', 'trustedProxies', 'dateFormat', 'countErrors'])
const EVENT_KEYS = new Set(['ip', 'user', 'time', 'grammar', 'envelope', 'outcome', 'error', 'session'])
const DEFAULT_NOW = '2026-11-25T14:00:00Z'

/** Unescapes a double-quoted annotation value: \\ \" \t \r \n \uXXXX. */
function unquote(body: string, where: string): string {
  return body.replace(/\\(u[0-9A-Fa-f]{4}|.)/g, (_, e: string) => {
    if (e.length === 5) return String.fromCharCode(parseInt(e.slice(1), 16))
    switch (e) {
      case '\\': return '\\'
      case '"': return '"'
      case 't': return '\t'
      case 'r': return '\r'
      case 'n': return '\n'
      default: throw new FixtureError(`${where}: unknown escape \\${e} in a quoted value`)
    }
  })
}

interface Token {
  key: string
  op: '=' | '~' | ''
  value: string
}

/** `word`, `key=value`, `key="quoted value"`, `key~value`, separated by spaces. */
function tokenize(text: string, where: string): Token[] {
  const tokens: Token[] = []
  const re = /\s*([A-Za-z][\w-]*)(?:([=~])("(?:[^"\\]|\\.)*"|[^\s"]*))?(?=\s|$)/y
  let pos = 0
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break
    re.lastIndex = pos
    const m = re.exec(text)
    if (m === null) throw new FixtureError(`${where}: cannot read "${text.slice(pos).trim()}"`)
    const raw = m[3] ?? ''
    const value = raw.startsWith('"') ? unquote(raw.slice(1, -1), where) : raw
    tokens.push({key: m[1] ?? '', op: (m[2] ?? '') as Token['op'], value})
    pos = re.lastIndex
  }
  return tokens
}

function parseTime(value: string, where: string): number {
  const t = Date.parse(value)
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || !Number.isFinite(t)) throw new FixtureError(`${where}: "${value}" is not an ISO 8601 time`)
  return t
}

function parseAnnotation(text: string, where: string): Expectation {
  const tokens = tokenize(text, where)
  const first = tokens.shift()
  if (first === undefined || first.op !== '' || !VERDICTS.has(first.key)) {
    throw new FixtureError(`${where}: an annotation starts with counted, not-counted or none`)
  }
  const e: Expectation = {verdict: first.key as Verdict, escaped: false}
  for (const t of tokens) {
    if (t.op === '' && t.key === 'escaped') {
      e.escaped = true
    } else if (t.op === '~' && t.key === 'reason') {
      if (t.value === '') throw new FixtureError(`${where}: reason~ needs a substring`)
      e.reason = t.value
    } else if (t.op === '=' && EVENT_KEYS.has(t.key)) {
      if (t.key in e) throw new FixtureError(`${where}: ${t.key} given twice`)
      switch (t.key) {
        case 'ip': e.ip = t.value === 'null' ? null : t.value; break
        case 'session': e.session = t.value === 'null' ? null : t.value; break
        case 'error':
          if (t.value !== 'null' && !/^-?\d+$/.test(t.value)) throw new FixtureError(`${where}: error=${t.value} is not an integer`)
          e.error = t.value === 'null' ? null : Number(t.value)
          break
        case 'time': e.time = parseTime(t.value, where); break
        case 'user': e.user = t.value; break
        case 'grammar': e.grammar = t.value; break
        case 'envelope': e.envelope = t.value; break
        case 'outcome': e.outcome = t.value; break
      }
    } else {
      throw new FixtureError(`${where}: unknown annotation item "${t.key}${t.op}"`)
    }
  }
  if (e.verdict === 'none') {
    const extra = Object.keys(e).filter((k) => !['verdict', 'escaped', 'envelope'].includes(k))
    if (extra.length > 0) throw new FixtureError(`${where}: a none line can only say envelope=, not ${extra.join(', ')}`)
  } else {
    if (!('ip' in e)) throw new FixtureError(`${where}: ${e.verdict} needs ip= (ip=null for none)`)
    if (e.grammar === undefined) throw new FixtureError(`${where}: ${e.verdict} needs grammar=`)
  }
  return e
}

/**
 * An escaped log line: \t \r \\ and \xNN (one raw byte); the bytes are then
 * decoded as UTF-8 with replacement, as the log reader does.
 */
function unescapeLogLine(text: string, where: string): string {
  const parts: Buffer[] = []
  for (const [i, piece] of text.split(/(\\x[0-9A-Fa-f]{2}|\\.?)/).entries()) {
    if (i % 2 === 0) parts.push(Buffer.from(piece, 'utf8'))
    else if (piece === '\\t') parts.push(Buffer.from([0x09]))
    else if (piece === '\\r') parts.push(Buffer.from([0x0d]))
    else if (piece === '\\\\') parts.push(Buffer.from([0x5c]))
    else if (piece.length === 4) parts.push(Buffer.from([parseInt(piece.slice(2), 16)]))
    else throw new FixtureError(`${where}: unknown escape ${piece} in an escaped log line`)
  }
  return Buffer.concat(parts).toString('utf8')
}

function parseHeader(tokens: Token[], where: string, format: LogFormat, opts: {options: ParseOptions; now: number}): void {
  for (const t of tokens) {
    if (t.op !== '=' || !HEADER_KEYS.has(t.key)) throw new FixtureError(`${where}: unknown header item "${t.key}${t.op}"`)
    switch (t.key) {
      case 'format':
        if (t.value !== 'auto' && !(ENVELOPE_IDS as readonly string[]).includes(t.value)) throw new FixtureError(`${where}: unknown format ${t.value}`)
        format.format = t.value as LogFormat['format']
        break
      case 'ident': format.ident = t.value; break
      case 'timezone': format.timezone = t.value; break
      case 'dateFormat': format.dateFormat = t.value; break
      case 'sessionPrefix':
        if (!['auto', 'required', 'optional'].includes(t.value)) throw new FixtureError(`${where}: sessionPrefix=${t.value}`)
        format.sessionPrefix = t.value as LogFormat['sessionPrefix']
        break
      case 'now': opts.now = parseTime(t.value, where); break
      case 'trustedProxies':
        // ADDR, or ADDR=x-real-ip / ADDR=x-forwarded-for: the header that proxy writes.
        opts.options = {
          ...opts.options,
          trustedProxies: proxyList(
            t.value
              .split(',')
              .filter((s) => s !== '')
              .map((s) => {
                const [address = '', header] = s.split('=')
                if (header === undefined) return address
                if (header !== 'x-real-ip' && header !== 'x-forwarded-for') throw new FixtureError(`${where}: trustedProxies header ${header}`)
                return {address, header}
              }),
          ),
        }
        break
      case 'countErrors':
        opts.options = {...opts.options, countErrors: new Set(t.value.split(',').filter((s) => s !== '').map(Number))}
        break
    }
  }
}

/** Reads a fixture file; throws FixtureError on anything malformed. */
function parseFixture(name: string, bytes: Buffer): Fixture {
  const format: LogFormat = {...DEFAULT_LOG_FORMAT, timezone: 'UTC'}
  const opts = {options: DEFAULT_PARSE_OPTIONS, now: Date.parse(DEFAULT_NOW)}
  const lines: FixtureLine[] = []
  // The reader's framing: LF only, one trailing CR dropped, UTF-8 with replacement.
  const physical = bytes.toString('utf8').split('\n')
  if (physical.at(-1) === '') physical.pop()
  let pending: {expect: Expectation; no: number} | null = null
  let body = false
  physical.forEach((raw, i) => {
    const no = i + 1
    const where = `${name}:${no}`
    if (raw.includes('\r')) throw new FixtureError(`${where}: a literal CR; write \\r in an escaped line instead`)
    const isAnnotation = raw.startsWith('#>')
    const isLog = !isAnnotation && !raw.startsWith('#!') && !raw.startsWith('##') && raw !== ''
    if (pending !== null && !isLog) throw new FixtureError(`${name}:${pending.no}: annotation without a log line right after it`)
    if (raw.startsWith('#!')) {
      if (body) throw new FixtureError(`${where}: header after the first annotation`)
      parseHeader(tokenize(raw.slice(2), where), where, format, opts)
    } else if (isAnnotation) {
      body = true
      pending = {expect: parseAnnotation(raw.slice(2), where), no}
    } else if (isLog) {
      if (pending === null) throw new FixtureError(`${where}: log line without an annotation`)
      const text = pending.expect.escaped ? unescapeLogLine(raw, where) : raw
      lines.push({no, text: text.endsWith('\r') ? text.slice(0, -1) : text, expect: pending.expect})
      pending = null
    }
  })
  if (pending !== null) throw new FixtureError(`${name}:${(pending as {no: number}).no}: annotation without a log line right after it`)
  if (lines.length === 0) throw new FixtureError(`${name}: no annotated lines`)
  return {name, format, options: opts.options, now: opts.now, lines}
}

function show(v: unknown): string {
  return typeof v === 'number' && v > 1e11 ? `${new Date(v).toISOString()}` : JSON.stringify(v)
}

/** Feeds a fixture through one LineParser; returns one message per mismatch. */
function check(f: Fixture): string[] {
  const parser = new LineParser(f.format, f.options, {}, f.now)
  const problems: string[] = []
  for (const {no, text, expect: x} of f.lines) {
    const where = `${f.name}:${no}`
    let event
    try {
      event = parser.parse(text)
    } catch (err) {
      problems.push(`${where}: the parser threw ${String(err)}`)
      continue
    }
    const envelope = f.format.format === 'auto' ? parser.state.envelope : f.format.format
    const bad = (what: string, want: unknown, got: unknown) => problems.push(`${where}: ${what}: expected ${show(want)}, got ${show(got)}`)
    if (x.envelope !== undefined && envelope !== x.envelope) bad('envelope', x.envelope, envelope)
    if (x.verdict === 'none') {
      if (event !== null) bad('verdict', 'none', `${event.counted ? 'counted' : 'not-counted'} ${event.grammar} ip=${event.ip} (${event.reason})`)
      continue
    }
    if (event === null) {
      bad('verdict', x.verdict, 'none')
      continue
    }
    const verdict = event.counted ? 'counted' : 'not-counted'
    if (verdict !== x.verdict) bad('verdict', `${x.verdict}`, `${verdict} (${event.reason})`)
    if (x.ip !== undefined && event.ip !== x.ip) bad('ip', x.ip, event.ip)
    if (x.grammar !== undefined && event.grammar !== x.grammar) bad('grammar', x.grammar, event.grammar)
    if (x.user !== undefined && event.user !== x.user) bad('user', x.user, event.user)
    if (x.time !== undefined && event.time !== x.time) bad('time', x.time, event.time)
    if (x.outcome !== undefined && event.outcome !== x.outcome) bad('outcome', x.outcome, event.outcome)
    if (x.error !== undefined && event.errorCode !== x.error) bad('error', x.error, event.errorCode)
    if (x.session !== undefined && event.session !== x.session) bad('session', x.session, event.session)
    if (x.reason !== undefined && !event.reason.includes(x.reason)) bad('reason', `…${x.reason}…`, event.reason)
  }
  return problems
}

function fixtureFiles(): string[] {
  return readdirSync(FIXTURES).filter((n) => n.endsWith('.log')).sort()
}

function loadAll(): Fixture[] {
  return fixtureFiles().map((n) => parseFixture(n, readFileSync(join(FIXTURES, n))))
}

// ---------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------

for (const name of fixtureFiles()) {
  test(`fixture ${name}: every line parses as annotated`, () => {
    const f = parseFixture(name, readFileSync(join(FIXTURES, name)))
    const problems = check(f)
    assert.deepEqual(problems, [], `${problems.length} of ${f.lines.length} lines differ from their annotation:\n${problems.join('\n')}`)
  })
}

test('the corpus expects every grammar and every envelope at least once', () => {
  const all = loadAll()
  const expects = all.flatMap((f) => f.lines.map((l) => l.expect))
  const grammars = new Set(expects.filter((x) => x.verdict !== 'none').map((x) => x.grammar))
  const envelopes = new Set(expects.map((x) => x.envelope))
  const missingGrammars = GRAMMARS.map((g) => g.id).filter((id) => !grammars.has(id))
  const missingEnvelopes = ENVELOPE_IDS.filter((id) => !envelopes.has(id))
  assert.deepEqual(missingGrammars, [], `grammars without a fixture line expecting them: ${missingGrammars.join(', ')}`)
  assert.deepEqual(missingEnvelopes, [], `envelopes without a fixture line annotated envelope=<id>: ${missingEnvelopes.join(', ')}`)
  // Annotations name only ids that exist.
  for (const x of expects) {
    if (x.grammar !== undefined) assert.ok(GRAMMARS.some((g) => g.id === x.grammar), `unknown grammar ${x.grammar}`)
    if (x.envelope !== undefined) assert.ok((ENVELOPE_IDS as readonly string[]).includes(x.envelope), `unknown envelope ${x.envelope}`)
  }
})

// ---------------------------------------------------------------------------
// The fixture reader refuses what would let a line go unchecked
// ---------------------------------------------------------------------------

const LINE = '[25-Nov-2026 13:00:00 +0000]: Failed login for a from 192.0.2.1 in session x (error: 0)'
const NOTE = '#> counted ip=192.0.2.1 grammar=F2'

function rejects(text: string, message: RegExp): void {
  assert.throws(() => parseFixture('t.log', Buffer.from(text)), (err: unknown) => err instanceof FixtureError && message.test(err.message))
}

test('fixture reader: a log line without an annotation is an error', () => {
  rejects(`${NOTE}\n${LINE}\n${LINE}\n`, /t\.log:3: log line without an annotation/)
  rejects(`#! format=file\n${LINE}\n`, /t\.log:2: log line without an annotation/)
})

test('fixture reader: an annotation not directly followed by its log line is an error', () => {
  rejects(`${NOTE}\n`, /t\.log:1: annotation without a log line/)
  rejects(`${NOTE}\n\n${LINE}\n`, /t\.log:1: annotation without a log line/)
  rejects(`${NOTE}\n${NOTE}\n${LINE}\n`, /t\.log:1: annotation without a log line/)
  rejects(`${NOTE}\n## comment\n${LINE}\n`, /t\.log:1: annotation without a log line/)
})

test('fixture reader: malformed annotations and headers are errors', () => {
  rejects(`#> counted grammar=F2\n${LINE}\n`, /needs ip=/)
  rejects(`#> counted ip=192.0.2.1\n${LINE}\n`, /needs grammar=/)
  rejects(`#> maybe ip=192.0.2.1 grammar=F2\n${LINE}\n`, /starts with counted/)
  rejects(`#> none ip=192.0.2.1\n${LINE}\n`, /none line can only say envelope/)
  rejects(`#> counted ip=192.0.2.1 grammar=F2 colour=red\n${LINE}\n`, /unknown annotation item/)
  rejects(`#> counted ip=192.0.2.1 grammar=F2 time=yesterday\n${LINE}\n`, /not an ISO 8601 time/)
  rejects(`#! colour=red\n${NOTE}\n${LINE}\n`, /unknown header item/)
  rejects(`${NOTE}\n${LINE}\n#! format=file\n`, /header after the first annotation/)
  rejects(`${NOTE}\n${LINE}\r\n`, /literal CR/)
})

test('fixture reader: quoted values, escaped lines and the reader\'s UTF-8 decoding', () => {
  const f = parseFixture('t.log', Buffer.from([
    '#! format=file dateFormat="d-M-Y H:i:s O" trustedProxies=198.51.100.2,2001:db8::/32 countErrors=0',
    '#> not-counted escaped ip=192.0.2.1 user="a\\tb\\rc \\"q\\" \\uFFFD" grammar=F2 reason~"error 1"',
    '[25-Nov-2026 13:00:00 +0000]: Failed login for a\\tb\\rc "q" \\xff from 192.0.2.1 in session x (error: 1)',
    '',
  ].join('\n')))
  assert.equal(f.format.format, 'file')
  assert.equal(f.format.dateFormat, 'd-M-Y H:i:s O')
  assert.ok(f.options.trustedProxies.has('2001:db8::7'))
  assert.deepEqual([...f.options.countErrors], [0])
  const [line] = f.lines
  assert.ok(line)
  assert.equal(line.no, 3)
  assert.equal(line.expect.user, 'a\tb\rc "q" \uFFFD')
  assert.equal(line.text, '[25-Nov-2026 13:00:00 +0000]: Failed login for a\tb\rc "q" \uFFFD from 192.0.2.1 in session x (error: 1)')
  assert.deepEqual(check(f), [])
})

test('the checker reports every difference from an annotation', () => {
  const f = parseFixture('t.log', Buffer.from([
    '#> counted ip=192.0.2.2 user=b time=2026-11-25T13:00:01Z grammar=F1 envelope=stdout error=1 session=s reason~nope',
    LINE,
    '#> none',
    LINE,
    '#> not-counted ip=null grammar=F2',
    'Stack trace:',
    '',
  ].join('\n')))
  const problems = check(f)
  for (const what of ['envelope', 'ip', 'grammar', 'user', 'time', 'error', 'session', 'reason']) {
    assert.ok(problems.some((p) => p.startsWith(`t.log:2: ${what}:`)), `no ${what} problem in ${problems.join('\n')}`)
  }
  assert.ok(problems.some((p) => p.startsWith('t.log:4: verdict: expected "none"')))
  assert.ok(problems.some((p) => p.startsWith('t.log:6: verdict: expected "not-counted", got "none"')))
})

// ---------------------------------------------------------------------------
// The shared format document's own examples
// ---------------------------------------------------------------------------

/** The lines of the ``` blocks between a `## N.` heading and the next `## ` heading. */
function codeBlocks(markdown: string, section: number): string[][] {
  const lines = markdown.split('\n')
  const start = lines.findIndex((l) => l.startsWith(`## ${section}.`))
  if (start === -1) return []
  const blocks: string[][] = []
  let block: string[] | null = null
  let indent = 0
  for (const line of lines.slice(start + 1)) {
    if (block === null && line.startsWith('## ')) break
    const fence = /^(\s*)```/.exec(line)
    if (fence !== null) {
      if (block === null) {
        block = []
        indent = fence[1]?.length ?? 0
      } else {
        blocks.push(block)
        block = null
      }
    } else if (block !== null && line.trim() !== '') {
      block.push(line.slice(indent))
    }
  }
  return blocks
}

/** Strips the document's version label column (`1.0.x   `, `rate    `, …) in front of a line. */
function stripLabel(line: string): string {
  return line.replace(/^(?![[{])\S+ +(?=\[)/, '')
}

test('every composed example in sections 2 and 4 of the format document parses to a login event', (t) => {
  if (!existsSync(SPEC)) {
    t.skip(`${SPEC} not found (CI keeps shared/ beside the clone): the document's examples were not checked`)
    return
  }
  const md = readFileSync(SPEC, 'utf8')
  const format: LogFormat = {...DEFAULT_LOG_FORMAT, timezone: 'UTC', sessionPrefix: 'optional'}
  const now = Date.parse('2026-11-25T14:00:00Z')
  let checked = 0
  let skipped = 0
  for (const section of [2, 4]) {
    const blocks = codeBlocks(md, section)
    assert.ok(blocks.length > 0, `no code blocks found in section ${section}`)
    for (const block of blocks) {
      // Section 4 also quotes PHP's own error_log lines (and a stack trace):
      // examples of what must be skipped, so they must not parse.
      const phpNative = block.some((l) => /^\[[^\]]+\] PHP /.test(l))
      for (const raw of block) {
        const line = stripLabel(raw)
        const event = new LineParser(format, DEFAULT_PARSE_OPTIONS, {}, now).parse(line)
        if (phpNative) {
          assert.equal(event, null, `PHP's own line must not parse: ${line}`)
          skipped++
        } else {
          assert.ok(event !== null, `section ${section} example does not parse: ${line}`)
          assert.ok(event.ip !== null, `section ${section} example has no address: ${line}`)
          checked++
        }
      }
    }
  }
  assert.ok(checked >= 15, `only ${checked} examples found: has the document's layout changed?`)
  t.diagnostic(`${checked} login examples parsed, ${skipped} PHP-native lines skipped`)
})
