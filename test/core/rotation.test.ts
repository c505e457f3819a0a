/**
 * Every log line is read exactly once across rotations.
 *
 * The rotations are made by the real logrotate (its own configuration and
 * `-s statefile` in a temp directory, forced with `-f`), the reads by
 * readNewLines with the position saved and restored through the store's
 * schema, as the guard does between two cron runs. Each line written is
 * unique, and every test asserts that the lines delivered are exactly the
 * lines written, in order: none lost, none twice.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import fc from 'fast-check'
import {params} from '../helpers/property.js'
import {readNewLines, type LogPosition, type ReadReport} from '../../src/core/logreader/reader.js'
import {positionSchema} from '../../src/core/store/schema.js'
import {tempDir} from '../helpers/env.js'

const LOGROTATE = ['/usr/sbin/logrotate', '/sbin/logrotate', '/usr/bin/logrotate'].find((p) => existsSync(p))
const XZ = ['/usr/bin/xz', '/bin/xz'].find((p) => existsSync(p))

type Mode = 'create' | 'copytruncate'
type Compression = 'none' | 'gzip' | 'gzip-delay' | 'xz-delay'

/** The real logrotate on one log in a temp directory: every call rotates (-f). */
class Logrotate {
  readonly state: string
  readonly conf: string
  constructor(
    readonly dir: string,
    readonly log: string,
    readonly compression: Compression = 'none',
    readonly extra: string[] = [],
  ) {
    assert.ok(LOGROTATE !== undefined, 'logrotate is not installed: apt-get install -y logrotate')
    this.state = join(dir, 'logrotate.state')
    this.conf = join(dir, 'logrotate.conf')
  }

  rotate(mode: Mode): void {
    const compress = {
      none: [],
      gzip: ['compress'],
      'gzip-delay': ['compress', 'delaycompress'],
      'xz-delay': ['compress', 'delaycompress', `compresscmd ${XZ}`, 'compressext .xz', 'compressoptions -1'],
    }[this.compression]
    const conf = [`${this.log} {`, 'rotate 30', 'missingok', mode, ...compress, ...this.extra, '}', ''].join('\n')
    writeFileSync(this.conf, conf)
    execFileSync(LOGROTATE ?? 'logrotate', ['-f', '-s', this.state, this.conf], {stdio: 'pipe'})
  }

  /** The log's rotated copies, as logrotate left them. */
  copies(): string[] {
    const base = this.log.slice(this.dir.length + 1)
    return readdirSync(this.dir)
      .filter((n) => n.startsWith(`${base}.`) || n.startsWith(`${base}-`))
      .sort()
  }
}

/** Appends unique lines to the log and remembers them. */
class Writer {
  private n = 0
  readonly written: string[] = []
  constructor(readonly log: string) {}

  lines(count: number): void {
    let text = ''
    for (let i = 0; i < count; i++) {
      this.n++
      const line = `[25-Nov-2026 13:00:00 +0000]: <w${this.n}> line ${this.n} ${'x'.repeat(this.n % 40)}`
      this.written.push(line)
      text += `${line}\n`
    }
    if (text !== '') appendFileSync(this.log, text)
  }
}

/** What the guard does each run: read with the saved position, save the new one through the store's schema. */
class Guard {
  position: LogPosition | undefined
  readonly got: string[] = []
  readonly reports: ReadReport[] = []
  constructor(readonly log: string) {}

  async read(): Promise<ReadReport> {
    const files: string[] = []
    const r = await readNewLines(this.log, this.position, (text, _lineNo, file) => {
      if (files.at(-1) !== file) {
        assert.ok(!files.includes(file), `the lines of ${file} came in two runs: ${files.join(', ')}, ${file}`)
        files.push(file)
      }
      this.got.push(text)
    })
    this.reports.push(r)
    if (r.position !== undefined) this.position = positionSchema.parse(JSON.parse(JSON.stringify(r.position)))
    return r
  }

  notes(): string {
    return this.reports.flatMap((r) => r.notes).join('\n')
  }

  warnings(): string[] {
    return this.reports.flatMap((r) => r.warnings)
  }
}

/** Each written line delivered exactly once, in the order written. */
function assertExactlyOnce(got: string[], written: string[], context = ''): void {
  const count = new Map<string, number>()
  for (const l of got) count.set(l, (count.get(l) ?? 0) + 1)
  const lost = written.filter((l) => !count.has(l))
  const twice = [...count].filter(([, n]) => n > 1).map(([l]) => l)
  assert.deepEqual({lost, twice}, {lost: [], twice: []}, context)
  assert.deepEqual(got, written, `in the order written${context === '' ? '' : `: ${context}`}`)
}

function setup(t: {after: (fn: () => void) => void}, compression: Compression = 'none', extra: string[] = []) {
  const dir = tempDir(t, 'rcguard-rotation-')
  const log = join(dir, 'errors.log')
  writeFileSync(log, '')
  return {dir, log, rotate: new Logrotate(dir, log, compression, extra), writer: new Writer(log), guard: new Guard(log)}
}

for (const [mode, title, note] of [
  ['create', 'create (rename): the old file is finished from the saved offset, then the new file is read', /rotated once: finished .*errors\.log\.1 from byte \d+, then the new file/],
  [
    'copytruncate',
    'copytruncate: the lines since the last run are read from errors.log.1 (a copy, new inode), then the truncated file',
    /copied and truncated once: finished .*errors\.log\.1 from byte \d+, then the truncated file from its start/,
  ],
] as const) {
  test(title, async (t) => {
    const {rotate, writer, guard} = setup(t)
    writer.lines(3)
    await guard.read()
    writer.lines(2)
    rotate.rotate(mode)
    writer.lines(2)
    await guard.read()
    writer.lines(1)
    await guard.read()
    assertExactlyOnce(guard.got, writer.written)
    assert.match(guard.notes(), note)
  })
}

test('copytruncate with nothing appended after the truncate, and a read right after it', async (t) => {
  const {rotate, writer, guard} = setup(t)
  writer.lines(2)
  await guard.read()
  writer.lines(2)
  rotate.rotate('copytruncate')
  await guard.read()
  await guard.read()
  writer.lines(2)
  await guard.read()
  assertExactlyOnce(guard.got, writer.written)
})

test('the copytruncate race: lines between the copy and the truncate are logrotate\'s loss; a read in between, or lines after, are once', async (t) => {
  // What logrotate's copytruncate does, step by step, so that writes and reads can come between the steps.
  const {log, writer, guard} = setup(t)
  writer.lines(2)
  await guard.read()
  writer.lines(2)
  copyFileSync(log, `${log}.1`)
  writer.lines(1)
  const lostByLogrotate = writer.written.at(-1)
  truncateSync(log, 0)
  writer.lines(2)
  await guard.read()
  assertExactlyOnce(guard.got, writer.written.filter((l) => l !== lostByLogrotate), 'lines after the truncate')
  // A read between the copy and the truncate takes the lines appended in between (the copy is shorter than the offset).
  writer.lines(1)
  renameSync(`${log}.1`, `${log}.2`)
  copyFileSync(log, `${log}.1`)
  writer.lines(1)
  await guard.read()
  truncateSync(log, 0)
  writer.lines(1)
  await guard.read()
  assertExactlyOnce(guard.got, writer.written.filter((l) => l !== lostByLogrotate), 'a read between copy and truncate')
})

for (const mode of ['create', 'copytruncate'] as const) {
  test(`${mode} + compress + delaycompress: two, then three rotations between reads, appends between every step`, async (t) => {
    const {rotate, writer, guard} = setup(t, 'gzip-delay')
    writer.lines(4)
    await guard.read()
    writer.lines(2)
    rotate.rotate(mode)
    writer.lines(3)
    rotate.rotate(mode)
    writer.lines(1)
    await guard.read()
    assertExactlyOnce(guard.got, writer.written, 'after two rotations')
    assert.ok(rotate.copies().includes('errors.log.2.gz'), rotate.copies().join(' '))
    assert.match(guard.notes(), /twice: finished .*errors\.log\.2\.gz from byte \d+, read .*errors\.log\.1, then the /)
    writer.lines(2)
    rotate.rotate(mode)
    writer.lines(2)
    rotate.rotate(mode)
    writer.lines(2)
    rotate.rotate(mode)
    writer.lines(2)
    await guard.read()
    assertExactlyOnce(guard.got, writer.written, 'after three more rotations')
    assert.match(guard.notes(), /3 times: finished .*errors\.log\.3\.gz from byte \d+, read .*errors\.log\.2\.gz, .*errors\.log\.1, then the /)
    assert.deepEqual(guard.warnings(), [])
  })
}

test('compress without delaycompress: the old file is found (decompressed) as errors.log.1.gz', async (t) => {
  const {rotate, writer, guard} = setup(t, 'gzip')
  writer.lines(3)
  await guard.read()
  writer.lines(3)
  rotate.rotate('create')
  writer.lines(1)
  await guard.read()
  writer.lines(2)
  rotate.rotate('copytruncate')
  writer.lines(2)
  rotate.rotate('create')
  writer.lines(2)
  await guard.read()
  assertExactlyOnce(guard.got, writer.written)
  assert.match(guard.notes(), /errors\.log\.1\.gz from byte/)
})

test('a mix of create and copytruncate between two reads, and no rotation: nothing read twice', async (t) => {
  const {rotate, writer, guard} = setup(t, 'gzip-delay')
  writer.lines(2)
  await guard.read()
  rotate.rotate('copytruncate')
  writer.lines(2)
  rotate.rotate('create')
  writer.lines(2)
  rotate.rotate('copytruncate')
  writer.lines(2)
  await guard.read()
  await guard.read()
  writer.lines(1)
  await guard.read()
  assertExactlyOnce(guard.got, writer.written)
})

test('a half-written last line waits in the live file; in the rotated copy it is delivered', async (t) => {
  const {log, rotate, writer, guard} = setup(t)
  writer.lines(2)
  appendFileSync(log, '[25-Nov-2026 13:00:00 +0000]: half')
  await guard.read()
  assertExactlyOnce(guard.got, writer.written, 'the half line waits')
  appendFileSync(log, '-written\n[25-Nov-2026 13:00:00 +0000]: no newline yet')
  writer.written.push('[25-Nov-2026 13:00:00 +0000]: half-written', '[25-Nov-2026 13:00:00 +0000]: no newline yet')
  rotate.rotate('create')
  writer.lines(1)
  await guard.read()
  assertExactlyOnce(guard.got, writer.written)
})

test('a log that was empty at the last read, then lines and a copytruncate: they are read from the copy', async (t) => {
  const {rotate, writer, guard} = setup(t, 'gzip-delay')
  await guard.read()
  writer.lines(2)
  rotate.rotate('copytruncate')
  await guard.read()
  assertExactlyOnce(guard.got, writer.written, 'first rotation, no copy before')
  // Now with older copies around, one of them empty.
  rotate.rotate('copytruncate')
  await guard.read()
  writer.lines(2)
  rotate.rotate('copytruncate')
  writer.lines(1)
  rotate.rotate('create')
  await guard.read()
  writer.lines(1)
  await guard.read()
  assertExactlyOnce(guard.got, writer.written, 'with older copies')
})

test('dateext names (errors.log-YYYYMMDD-SECONDS.gz) are found and read in order', async (t) => {
  const {rotate, writer, guard} = setup(t, 'gzip-delay', ['dateext', 'dateformat -%Y%m%d-%s'])
  writer.lines(2)
  await guard.read()
  writer.lines(2)
  rotate.rotate('create')
  await new Promise((r) => setTimeout(r, 1100))
  writer.lines(2)
  rotate.rotate('copytruncate')
  writer.lines(2)
  await guard.read()
  assertExactlyOnce(guard.got, writer.written)
  assert.ok(rotate.copies().some((n) => n.endsWith('.gz')), rotate.copies().join(' '))
})

test('a corrupt .gz is one warning naming it, never a crash; the other files are still read once', async (t) => {
  const {dir, rotate, writer, guard} = setup(t, 'gzip-delay')
  writer.lines(2)
  await guard.read()
  writer.lines(2)
  rotate.rotate('create')
  const lost = writer.written.slice(2)
  writer.lines(2)
  rotate.rotate('create')
  writer.lines(2)
  rotate.rotate('create')
  writer.lines(1)
  // errors.log.3.gz holds the lines not read yet: its start is fine, the rest garbage.
  const gz = join(dir, 'errors.log.3.gz')
  const bytes = readFileSync(gz)
  writeFileSync(gz, Buffer.concat([bytes.subarray(0, 12), Buffer.from('not a deflate stream at all, sorry'.repeat(10))]))
  await guard.read()
  const warnings = guard.warnings()
  assert.equal(warnings.length, 1, warnings.join('\n'))
  assert.match(warnings[0] ?? '', /errors\.log\.3\.gz/)
  const expected = writer.written.filter((l) => !lost.includes(l))
  assertExactlyOnce(guard.got, expected)
  // The next runs do not warn again.
  writer.lines(1)
  await guard.read()
  await guard.read()
  assert.equal(guard.warnings().length, 1)
  assertExactlyOnce(guard.got, writer.written.filter((l) => !lost.includes(l)))
})

test('a copy compressed with something other than gzip (xz) is one warning naming it, never a crash', {skip: XZ === undefined ? 'xz is not installed' : false}, async (t) => {
  const {rotate, writer, guard} = setup(t, 'xz-delay')
  writer.lines(2)
  await guard.read()
  writer.lines(2)
  rotate.rotate('create')
  const lost = writer.written.slice(2)
  writer.lines(2)
  rotate.rotate('create')
  writer.lines(1)
  assert.ok(rotate.copies().includes('errors.log.2.xz'), rotate.copies().join(' '))
  await guard.read()
  const warnings = guard.warnings()
  assert.equal(warnings.length, 1, warnings.join('\n'))
  assert.match(warnings[0] ?? '', /errors\.log\.2\.xz.*xz/)
  assertExactlyOnce(guard.got, writer.written.filter((l) => !lost.includes(l)))
  writer.lines(1)
  await guard.read()
  assert.equal(guard.warnings().length, 1)
})

// ---------------------------------------------------------------------------
// Property: random appends (whole lines, half lines, nothing), random rotation
// kinds and reads, in any order; at the end every line was delivered once.

type Step = {kind: 'append'; lines: number; partial: boolean} | {kind: 'rotate'; mode: Mode} | {kind: 'read'}

const step: fc.Arbitrary<Step> = fc.oneof(
  {weight: 4, arbitrary: fc.record({kind: fc.constant('append' as const), lines: fc.nat({max: 4}), partial: fc.boolean()})},
  {weight: 2, arbitrary: fc.record({kind: fc.constant('rotate' as const), mode: fc.constantFrom<Mode>('create', 'copytruncate')})},
  {weight: 3, arbitrary: fc.constant({kind: 'read' as const})},
)

/** The lines a reader delivers from a file's text: finished, its last line even without LF; live, only complete lines. */
function linesOf(text: string, finished: boolean): string[] {
  const parts = text.split('\n')
  const last = parts.pop() ?? ''
  return finished && last !== '' ? [...parts, last] : parts
}


test('property: random appends, rotations (create, copytruncate; plain, gzip, delaycompress) and reads: each line exactly once', async (t) => {
  const root = tempDir(t, 'rcguard-rotation-property-')
  let run = 0
  await fc.assert(
    fc.asyncProperty(fc.constantFrom<Compression>('none', 'gzip', 'gzip-delay'), fc.array(step, {maxLength: 14}), async (compression, steps) => {
      const dir = join(root, `run-${run++}`)
      mkdirSync(dir, {mode: 0o700})
      const log = join(dir, 'errors.log')
      writeFileSync(log, '')
      const rotate = new Logrotate(dir, log, compression)
      const guard = new Guard(log)
      // The model: the text of every finished file, oldest first, and of the live one.
      const finished: string[] = []
      let live = ''
      let w = 0
      // The guard's first run saw the log empty (a first read leaves older rotated copies alone).
      await guard.read()
      for (const s of [...steps, {kind: 'read'} as const]) {
        if (s.kind === 'append') {
          let text = ''
          for (let i = 0; i < s.lines; i++) text += `<w${++w}> a line\n`
          if (s.partial) text += `<w${++w}> half`
          if (text !== '') appendFileSync(log, text)
          live += text
        } else if (s.kind === 'rotate') {
          rotate.rotate(s.mode)
          finished.push(live)
          live = ''
        } else {
          await guard.read()
          assert.deepEqual(guard.warnings(), [])
        }
      }
      const expected = [...finished.flatMap((f) => linesOf(f, true)), ...linesOf(live, false)]
      assertExactlyOnce(guard.got, expected, `${compression}: ${JSON.stringify(steps)}\n${guard.notes()}`)
    }),
    params(0x5eed20, 40),
  )
})
