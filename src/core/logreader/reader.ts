/**
 * Incremental log reading: each run consumes only the bytes appended since
 * the saved position, and only complete lines (a half-written last line waits
 * for the next run).
 *
 * A position remembers the file's device and inode, the byte offset and line
 * number reached, and a hash of the file's first bytes. When the live file no
 * longer holds the position (rotated by rename, copied and truncated, rotated
 * several times, compressed), rotation.ts finds the old file among the
 * rotated copies and reads what it and the newer copies gained, oldest first,
 * before the live file is read from its start: every line is read once.
 */
import {open, stat, type FileHandle} from 'node:fs/promises'
import {MAX_LINE_BYTES} from '../parser/parse.js'
import {FINGERPRINT_BYTES, fingerprintOf, LineSplitter, type LineHandler} from './lines.js'
import {anchorFor, catchUpRotations, type CopyIdentity} from './rotation.js'

export type {LineHandler} from './lines.js'
export {isRotatedName} from './rotation.js'

export interface LogPosition {
  dev: number
  ino: number
  /** Bytes consumed: always just after a newline. */
  offset: number
  /** Lines consumed, so that line numbers in reports are the file's own. */
  line: number
  /** sha256 (hex, shortened) of the first `fingerprintBytes` bytes (up to 256, what the file held). */
  fingerprint: string
  fingerprintBytes: number
  /**
   * The identity of the newest rotated copy that had any bytes, null when
   * there was none (undefined: not known yet, a position saved by an older
   * rcguard). The copies newer than it were rotated since: this is how the
   * lines of a log that was empty at the last read are found.
   */
  newestCopy?: CopyIdentity | null
}

export interface ReadReport {
  /** The position to save, or undefined when the file could not be read. */
  position: LogPosition | undefined
  bytes: number
  lines: number
  /** Lines longer than the parser's limit, skipped. */
  longLines: number
  /** What happened to the file since the last run, for --verbose. */
  notes: string[]
  /** Problems the admin should fix; the run goes on. */
  warnings: string[]
}

const CHUNK = 1024 * 1024

async function fingerprint(fh: FileHandle, length: number): Promise<{fingerprint: string; fingerprintBytes: number}> {
  const buf = Buffer.alloc(length)
  const {bytesRead} = await fh.read(buf, 0, length, 0)
  return {fingerprint: fingerprintOf(buf.subarray(0, bytesRead)), fingerprintBytes: bytesRead}
}

/**
 * Reads complete lines of an open file from `start` to `end` (a size taken
 * before reading, so a log that keeps growing still ends). Returns the offset
 * just after the last complete line and the lines read.
 */
async function readLines(
  fh: FileHandle,
  file: string,
  start: number,
  end: number,
  firstLineNo: number,
  onLine: LineHandler,
  progress?: (done: number) => void,
): Promise<{offset: number; lines: number; longLines: number}> {
  const splitter = new LineSplitter(file, firstLineNo, onLine, start)
  const buf = Buffer.alloc(CHUNK)
  let pos = start
  while (pos < end) {
    const {bytesRead} = await fh.read(buf, 0, Math.min(CHUNK, end - pos), pos)
    if (bytesRead === 0) break
    pos += bytesRead
    splitter.push(buf.subarray(0, bytesRead))
    progress?.(pos - start)
  }
  return {offset: start + splitter.consumed, lines: splitter.lines, longLines: splitter.longLines}
}

function explainOpenError(path: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return `log ${path} does not exist: check the instance's logs in the configuration, or that Roundcube writes there (log_driver 'file')`
    case 'EACCES':
    case 'EPERM':
      return `log ${path} is not readable: run rcguard as root, or give its user read access (Debian: group adm)`
    case 'EISDIR':
      return `log ${path} is a directory, not a file: name the log file itself`
    default:
      return `log ${path} cannot be read: ${err.message}`
  }
}

export interface SeekOptions {
  /** Lines before this time are not wanted (a log's first read): start near the first line at or after it. */
  target: number
  /** A line's time, or null for a line that carries none. */
  timeOf: (line: string) => number | null
}

const SEEK_WINDOW = 64 * 1024

/** The first line start at or after `pos` and the time of the first timed line from there. */
async function probe(fh: FileHandle, pos: number, size: number, timeOf: SeekOptions['timeOf']): Promise<{start: number; time: number} | null> {
  const buf = Buffer.alloc(Math.min(SEEK_WINDOW, size - pos))
  const {bytesRead} = await fh.read(buf, 0, buf.length, pos)
  let from = pos === 0 ? 0 : buf.indexOf(0x0a) + 1
  if (from === 0 && pos !== 0) return null
  for (;;) {
    const nl = buf.indexOf(0x0a, from)
    if (nl === -1 || nl >= bytesRead) return null
    const t = timeOf(buf.toString('utf8', from, nl))
    if (t !== null) return {start: pos + from, time: t}
    from = nl + 1
  }
}

/**
 * Where to start reading a log whose lines before `target` are not wanted:
 * a binary search over line starts by their times (Roundcube appends in time
 * order, give or take seconds, which `target` must already allow for). Lines
 * before the returned offset are counted, not read.
 */
async function seekStart(fh: FileHandle, size: number, seek: SeekOptions): Promise<{offset: number; lines: number}> {
  let lo = 0
  let hi = size
  while (hi - lo > SEEK_WINDOW) {
    const mid = Math.floor((lo + hi) / 2)
    const p = await probe(fh, mid, size, seek.timeOf)
    if (p === null || p.start >= hi) break
    if (p.time < seek.target) lo = p.start
    else hi = mid
  }
  if (lo === 0) return {offset: 0, lines: 0}
  // The line numbers of what follows stay the file's own.
  let lines = 0
  const buf = Buffer.alloc(CHUNK)
  for (let pos = 0; pos < lo; ) {
    const {bytesRead} = await fh.read(buf, 0, Math.min(CHUNK, lo - pos), pos)
    if (bytesRead === 0) break
    const chunk = buf.subarray(0, bytesRead)
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) lines++
    pos += bytesRead
  }
  return {offset: lo, lines}
}

/**
 * Reads what was appended to `path` since `saved` and calls onLine for each
 * complete line. With no saved position the file is read from its start, or
 * with `seek` from near the first line that is wanted.
 */
export interface ReadOptions {
  seek?: SeekOptions
  /** Called after each chunk with the bytes read so far and the bytes this read will take in all. */
  progress?: (done: number, total: number) => void
  /**
   * Asked once the live file is read, when it grew meanwhile: where an entry
   * starts that may still be growing (its lines were not used), so that the
   * next run reads it again from there; null when there is none.
   */
  hold?: (file: string) => {offset: number; line: number} | null
}

export async function readNewLines(
  path: string,
  saved: LogPosition | undefined,
  onLine: LineHandler,
  options: ReadOptions = {},
): Promise<ReadReport> {
  const {seek, progress} = options
  const report: ReadReport = {position: saved, bytes: 0, lines: 0, longLines: 0, notes: [], warnings: []}
  // Look before opening: opening a FIFO for reading would wait for a writer forever.
  const problem = await notRegular(path)
  if (problem !== null) {
    report.warnings.push(problem)
    return report
  }
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch (err) {
    report.warnings.push(explainOpenError(path, err as NodeJS.ErrnoException))
    return report
  }
  try {
    const st = await fh.stat()
    if (!st.isFile()) {
      report.warnings.push(`log ${path} is not a regular file: name the log file itself`)
      return report
    }
    let start = 0
    let lineNo = 0
    let newestCopy: CopyIdentity | null | undefined
    if (saved !== undefined) {
      const caught = await catchUpRotations(path, {fh, st}, saved, onLine, report)
      start = caught.start
      lineNo = caught.lineNo
      newestCopy = caught.newestCopy
    }
    const end = st.size
    if (saved === undefined && seek !== undefined && Number.isFinite(seek.target)) {
      const found = await seekStart(fh, end, seek)
      if (found.offset > 0) {
        report.notes.push(`first read: the ${found.lines} line(s) before byte ${found.offset} are older than the window and were not read`)
        start = found.offset
        lineNo = found.lines
      }
    }
    const total = end - start
    const r = await readLines(fh, path, start, end, lineNo, onLine, progress === undefined ? undefined : (done) => progress(done, total))
    report.bytes += r.offset - start
    report.lines += r.lines
    report.longLines += r.longLines
    let offset = r.offset
    let line = lineNo + r.lines
    // The file grew while it was read: a write may have been seen in part (the kernel grows a file page by
    // page during one write). Only then can its last entry still be growing.
    const grew = options.hold !== undefined && (await fh.stat()).size > end
    const held = grew ? options.hold?.(path) : null
    if (held != null && held.offset >= start && held.offset < offset) {
      report.notes.push(`${path}: the entry at line ${held.line + 1} may still be being written: it is read again next run`)
      offset = held.offset
      line = held.line
    }
    report.position = {
      dev: st.dev,
      ino: st.ino,
      offset,
      line,
      // What the file holds, read or not: a longer start tells files apart better.
      ...(await fingerprint(fh, Math.min(FINGERPRINT_BYTES, end))),
      newestCopy: await anchorFor(path, st, newestCopy),
    }
    if (r.longLines > 0) {
      report.warnings.push(`${path}: skipped ${r.longLines} line(s) longer than ${MAX_LINE_BYTES} bytes`)
    }
    return report
  } finally {
    await fh.close()
  }
}

/**
 * The complete lines in the last `bytes` bytes of a file (the first, partial
 * one dropped), oldest first. Used to learn a log's newest time before
 * reading it from the start.
 */
export async function readTail(path: string, bytes = 256 * 1024): Promise<string[]> {
  if ((await notRegular(path)) !== null) return []
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch {
    return []
  }
  try {
    const {size} = await fh.stat()
    const start = Math.max(0, size - bytes)
    const buf = Buffer.alloc(size - start)
    const {bytesRead} = await fh.read(buf, 0, buf.length, start)
    const lines = buf.toString('utf8', 0, bytesRead).split('\n')
    if (start > 0) lines.shift()
    lines.pop()
    return lines.filter((l) => l.length <= MAX_LINE_BYTES)
  } finally {
    await fh.close()
  }
}

/** Why a log cannot be read, in the words of the warnings, or null when it can. */
export async function unreadable(path: string): Promise<string | null> {
  const problem = await notRegular(path)
  if (problem !== null) return problem
  try {
    const fh = await open(path, 'r')
    await fh.close()
    return null
  } catch (err) {
    return explainOpenError(path, err as NodeJS.ErrnoException)
  }
}

/** A warning when path (followed through symlinks) is missing or not a regular file, else null. */
async function notRegular(path: string): Promise<string | null> {
  try {
    const st = await stat(path)
    if (st.isFile()) return null
    if (st.isDirectory()) return `log ${path} is a directory, not a file: name the log file itself`
    if (st.isFIFO()) return `log ${path} is a FIFO, not a file: rcguard reads log files, point it at the file the FIFO's reader writes`
    return `log ${path} is not a regular file: name the log file itself`
  } catch (err) {
    return explainOpenError(path, err as NodeJS.ErrnoException)
  }
}
