import {test} from 'node:test'
import assert from 'node:assert/strict'
import {appendFileSync, renameSync, truncateSync, writeFileSync, mkdirSync, chmodSync, unlinkSync} from 'node:fs'
import {join} from 'node:path'
import {readNewLines, type LogPosition} from '../../src/core/logreader/reader.js'
import {tempDir, isRoot} from '../helpers/env.js'

async function read(path: string, pos: LogPosition | undefined) {
  const lines: [string, number][] = []
  const r = await readNewLines(path, pos, (text, no) => lines.push([text, no]))
  return {lines, r}
}

test('reads only complete lines, then only what was appended, with the file\'s own line numbers', async (t) => {
  const f = join(tempDir(t), 'log')
  writeFileSync(f, 'one\ntwo\nhalf')
  const a = await read(f, undefined)
  assert.deepEqual(a.lines, [['one', 1], ['two', 2]])
  assert.equal(a.r.position?.offset, 8)
  appendFileSync(f, '-written\nfour\n')
  const b = await read(f, a.r.position)
  assert.deepEqual(b.lines, [['half-written', 3], ['four', 4]])
  const c = await read(f, b.r.position)
  assert.deepEqual(c.lines, [])
  assert.equal(c.r.bytes, 0)
})

test('CRLF loses its CR; a lone CR inside a line is data; invalid UTF-8 does not throw', async (t) => {
  const f = join(tempDir(t), 'log')
  writeFileSync(f, Buffer.concat([Buffer.from('a\r\nb\rc\n'), Buffer.from([0xff, 0xfe, 0x0a])]))
  const a = await read(f, undefined)
  assert.deepEqual(a.lines.map((l) => l[0]), ['a', 'b\rc', '\ufffd\ufffd'])
})

test('rotation by rename: the old file is finished from the saved offset, then the new one is read', async (t) => {
  const dir = tempDir(t)
  const f = join(dir, 'errors.log')
  writeFileSync(f, 'a\nb\n')
  const a = await read(f, undefined)
  appendFileSync(f, 'c\n')
  renameSync(f, `${f}.1`)
  writeFileSync(f, 'd\n')
  const b = await read(f, a.r.position)
  assert.deepEqual(b.lines.map((l) => l[0]), ['c', 'd'])
  assert.match(b.r.notes.join(' '), /rotated/)
})

test('truncation (copytruncate) and a file replaced in place are read again from the start', async (t) => {
  const f = join(tempDir(t), 'log')
  writeFileSync(f, 'aaaa\nbbbb\n')
  const a = await read(f, undefined)
  truncateSync(f, 0)
  appendFileSync(f, 'c\n')
  const b = await read(f, a.r.position)
  assert.deepEqual(b.lines.map((l) => l[0]), ['c'])
  assert.match(b.r.notes.join(' '), /truncated/)
  writeFileSync(f, 'XXXX\nYYYY\nZZZZ\n')
  const c = await read(f, b.r.position)
  assert.deepEqual(c.lines.map((l) => l[0]), ['XXXX', 'YYYY', 'ZZZZ'])
  assert.match(c.r.notes.join(' '), /replaced/)
})

test('missing file, directory and unreadable file give a warning naming the file and the fix', async (t) => {
  const dir = tempDir(t)
  const missing = await read(join(dir, 'nope.log'), undefined)
  assert.match(missing.r.warnings[0] ?? '', /nope\.log does not exist: check/)
  assert.equal(missing.r.position, undefined)
  mkdirSync(join(dir, 'd'))
  const d = await read(join(dir, 'd'), undefined)
  assert.match(d.r.warnings[0] ?? '', /not a regular file|is a directory/)
  if (!isRoot) {
    const f = join(dir, 'secret.log')
    writeFileSync(f, 'x\n')
    chmodSync(f, 0)
    const r = await read(f, undefined)
    assert.match(r.r.warnings[0] ?? '', /not readable/)
    unlinkSync(f)
  }
})

test('lines longer than the limit are skipped and reported, the rest still read', async (t) => {
  const f = join(tempDir(t), 'log')
  writeFileSync(f, `a\n${'x'.repeat(3 * 1024 * 1024)}\nb\n`)
  const a = await read(f, undefined)
  assert.deepEqual(a.lines, [['a', 1], ['b', 3]])
  assert.equal(a.r.longLines, 1)
  assert.match(a.r.warnings.join(' '), /longer than/)
})

test('a first read can seek to a time: earlier lines are counted, not read; line numbers stay the file\'s own', async (t) => {
  const f = join(tempDir(t), 'log')
  const lines: string[] = []
  for (let i = 0; i < 20_000; i++) lines.push(`[${String(i).padStart(6, '0')}] some text of a log line, number ${i}`)
  writeFileSync(f, `${lines.join('\n')}\n`)
  const timeOf = (line: string) => (line.startsWith('[') ? Number(line.slice(1, 7)) : null)
  const got: [string, number][] = []
  const r = await readNewLines(f, undefined, (text, no) => got.push([text, no]), {seek: {target: 15_000, timeOf}})
  // It starts within one 64 KiB search window (about 1,400 of these lines) before the target.
  assert.ok(got.length < 5_000 + 1_500, `read ${got.length} lines`)
  assert.ok(got.length >= 5_000, `read ${got.length} lines`)
  // Every wanted line is there, with its number in the file.
  const first = got.findIndex(([text]) => timeOf(text) === 15_000)
  assert.notEqual(first, -1)
  assert.deepEqual(got.slice(first), lines.slice(15_000).map((l, i) => [l, 15_001 + i]))
  assert.equal(got[0]?.[1], 20_000 - got.length + 1)
  assert.equal(r.position?.line, 20_000)
  assert.match(r.notes.join(' '), /first read: the \d+ line\(s\) before byte \d+ are older than the window and were not read/)
  // Without a usable time the whole file is read.
  const all: string[] = []
  await readNewLines(f, undefined, (text) => all.push(text), {seek: {target: 15_000, timeOf: () => null}})
  assert.equal(all.length, 20_000)
})
