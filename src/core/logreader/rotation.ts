/**
 * Rotation: finding the file a saved position belongs to among a log's
 * rotated copies, and reading what the log gained since the last run, so
 * that every line is read exactly once whatever logrotate did in between:
 * rename + create, copytruncate, several rotations (any mix), compressed
 * copies (`.N.gz`, read through gunzip, streaming).
 *
 * The file the position was taken on ("the old file") is found by identity:
 * - the live file itself, when it has the same inode, is at least as long as
 *   the offset and starts with the same bytes (nothing rotated);
 * - otherwise a rotated copy (`errors.log.1`, `.2.gz`, `-20261125`) that
 *   starts with the same bytes (after decompression) and is at least as long
 *   as the offset: the same inode first (renamed), then the newest such copy
 *   (copytruncate's copy, a compressed one).
 * The old file is finished from the offset, then each newer copy is read in
 * full, oldest first, then the live file from its start.
 *
 * A log that was empty at the last read has no first bytes to recognise: for
 * it the position keeps the identity of the newest rotated copy that existed
 * then (its "anchor"); the copies newer than that one are the ones rotated
 * since, all unread. The anchor also names the old file when it is a copy
 * that cannot be read (corrupt, xz): the oldest unreadable copy newer than it.
 */
import type {Stats} from 'node:fs'
import {open, readdir, type FileHandle} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {Readable} from 'node:stream'
import {createGunzip} from 'node:zlib'
import {MAX_LINE_BYTES} from '../parser/parse.js'
import {FINGERPRINT_BYTES, fingerprintOf, LineSplitter, type LineHandler} from './lines.js'

/** A file recognised by its first bytes: their fingerprint and how many they were. */
export interface CopyIdentity {
  fingerprint: string
  fingerprintBytes: number
}

/** What rotation handling needs of a saved position (LogPosition in reader.ts). */
export interface SavedPosition extends CopyIdentity {
  dev: number
  ino: number
  offset: number
  line: number
  newestCopy?: CopyIdentity | null
}

/** What the caller reports (ReadReport in reader.ts). */
interface Report {
  bytes: number
  lines: number
  longLines: number
  notes: string[]
  warnings: string[]
}

const COMPRESSED = /\.(?:gz|bz2|xz|zst|lz4|lzma|z)$/i

/** Whether a file name looks like a rotated copy of a log (`errors.log.1`, `.2.gz`, `-20261125`). */
export function isRotatedName(name: string): boolean {
  return COMPRESSED.test(name) || /[.-]\d+$/.test(name) || /\.(?:old|bak)$/.test(name)
}

/** What logrotate appends to a log's name: `.3`, `.3.gz`, `-20261125`, `-20261125.gz`. */
const SUFFIX = /^(?:\.(\d+)|-(\d[\w.-]*?))(?:\.(gz|bz2|xz|zst|lz4|lzma|z))?$/i

const CHUNK = 1024 * 1024

/** One rotated copy of a log, opened once so that a rename under our feet does not matter. */
export class RotatedCopy {
  private fh: FileHandle | undefined
  size = 0
  dev = 0
  ino = 0
  /** Why its lines cannot be read (a compression other than gzip, a corrupt file), else undefined. */
  problem: string | undefined

  constructor(
    readonly path: string,
    readonly compression: string | undefined,
  ) {
    if (compression !== undefined && compression.toLowerCase() !== 'gz') {
      this.problem = `compressed with ${compression.toLowerCase()}, which rcguard cannot read (it reads gzip, logrotate's default compresscmd)`
    }
  }

  get plain(): boolean {
    return this.compression === undefined
  }

  /** False when it is gone or not a regular file. */
  async open(): Promise<boolean> {
    try {
      this.fh = await open(this.path, 'r')
      const st = await this.fh.stat()
      if (!st.isFile()) return false
      this.size = st.size
      this.dev = st.dev
      this.ino = st.ino
      return true
    } catch {
      return false
    }
  }

  async close(): Promise<void> {
    await this.fh?.close().catch(() => undefined)
    this.fh = undefined
  }

  /** Its content (decompressed) from byte `start`, in chunks; throws when it cannot be read. */
  async *chunks(start = 0): AsyncGenerator<Buffer> {
    const fh = this.fh
    if (fh === undefined) throw new Error('not open')
    if (this.problem !== undefined) throw new Error(this.problem)
    if (this.plain) {
      yield* bytesOf(fh, start, this.size)
      return
    }
    // Not fh.createReadStream: a second stream on the same handle, after one was destroyed, never ends.
    const source = Readable.from(bytesOf(fh, 0, this.size, true))
    const gunzip = createGunzip()
    source.on('error', (err) => gunzip.destroy(err))
    source.pipe(gunzip)
    let skip = start
    try {
      for await (const chunk of gunzip as AsyncIterable<Buffer>) {
        if (skip >= chunk.length) {
          skip -= chunk.length
          continue
        }
        yield skip > 0 ? chunk.subarray(skip) : chunk
        skip = 0
      }
    } catch (err) {
      this.problem = `not a readable gzip file (${(err as Error).message})`
      throw new Error(this.problem)
    } finally {
      source.unpipe(gunzip)
      source.destroy()
      gunzip.destroy()
    }
  }

  /** The first `n` bytes of its content, fewer when it is shorter. */
  async head(n: number): Promise<Buffer> {
    const parts: Buffer[] = []
    let have = 0
    if (n > 0) {
      for await (const chunk of this.chunks(0)) {
        parts.push(Buffer.from(chunk.subarray(0, n - have)))
        have += Math.min(chunk.length, n - have)
        if (have >= n) break
      }
    }
    return Buffer.concat(parts)
  }

  /** Whether its content is at least `n` bytes long. */
  async reaches(n: number): Promise<boolean> {
    if (this.plain || n <= 0) return this.size >= n
    let have = 0
    for await (const chunk of this.chunks(0)) {
      have += chunk.length
      if (have >= n) return true
    }
    return false
  }

  /** Whether the position was taken on this file: same first bytes, at least as long as the offset. */
  async holds(saved: SavedPosition): Promise<boolean> {
    if (this.problem !== undefined) return false
    try {
      const head = await this.head(saved.fingerprintBytes)
      if (head.length < saved.fingerprintBytes || fingerprintOf(head) !== saved.fingerprint) return false
      return await this.reaches(saved.offset)
    } catch {
      return false
    }
  }

  /**
   * Its identity as an anchor: the fingerprint of its first bytes, of its
   * content when that can be read, else of the file's own bytes (which no
   * later rotation changes: an unreadable copy is already compressed).
   */
  async identity(n = FINGERPRINT_BYTES): Promise<CopyIdentity> {
    let bytes: Buffer
    try {
      bytes = await this.head(n)
    } catch {
      const buf = Buffer.alloc(Math.min(n, this.size))
      const {bytesRead} = this.fh === undefined ? {bytesRead: 0} : await this.fh.read(buf, 0, buf.length, 0)
      bytes = buf.subarray(0, bytesRead)
    }
    return {fingerprint: fingerprintOf(bytes), fingerprintBytes: bytes.length}
  }

  /** Reads its lines from byte `start` to its end, the last one even without LF (the file is finished). */
  async read(start: number, lineNo: number, onLine: LineHandler): Promise<{bytes: number; lines: number; longLines: number}> {
    const splitter = new LineSplitter(this.path, lineNo, onLine)
    for await (const chunk of this.chunks(start)) splitter.push(chunk)
    splitter.finish()
    return {bytes: splitter.consumed, lines: splitter.lines, longLines: splitter.longLines}
  }
}

/** A file's bytes from `start` to `end` in chunks, each a fresh buffer when `copy` (for a stream that keeps them). */
async function* bytesOf(fh: FileHandle, start: number, end: number, copy = false): AsyncGenerator<Buffer> {
  const buf = Buffer.alloc(Math.min(CHUNK, Math.max(0, end - start)))
  for (let pos = start; pos < end; ) {
    const {bytesRead} = await fh.read(buf, 0, Math.min(CHUNK, end - pos), pos)
    if (bytesRead === 0) break
    pos += bytesRead
    yield copy ? Buffer.from(buf.subarray(0, bytesRead)) : buf.subarray(0, bytesRead)
  }
}

/**
 * The rotated copies of `path`, oldest first: `-DATE` names in name order,
 * then `.N` from the highest N down. When both `.N` and `.N.gz` exist
 * (logrotate is compressing it right now) only the uncompressed one counts.
 * A copy that is the live file itself (rotated while we read) is left out.
 */
export async function listRotatedCopies(path: string, live: Stats): Promise<RotatedCopy[]> {
  const dir = dirname(path)
  const base = basename(path)
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return []
  }
  const byKey = new Map<string, {name: string; numeric: number | undefined; key: string; compression: string | undefined}>()
  for (const name of names) {
    if (!name.startsWith(base)) continue
    const m = SUFFIX.exec(name.slice(base.length))
    if (m === null) continue
    const numeric = m[1] === undefined ? undefined : Number(m[1])
    const key = m[1] ?? `-${m[2]}`
    const known = byKey.get(key)
    if (known === undefined || (known.compression !== undefined && m[3] === undefined)) byKey.set(key, {name, numeric, key, compression: m[3]})
  }
  const sorted = [...byKey.values()].sort((a, b) => {
    if (a.numeric === undefined && b.numeric === undefined) return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
    if (a.numeric === undefined) return -1
    if (b.numeric === undefined) return 1
    return b.numeric - a.numeric
  })
  const copies: RotatedCopy[] = []
  for (const c of sorted) {
    const copy = new RotatedCopy(join(dir, c.name), c.compression)
    if ((await copy.open()) && !(copy.dev === live.dev && copy.ino === live.ino)) copies.push(copy)
    else await copy.close()
  }
  return copies
}

/** The identity of the newest copy that has any bytes, null when there is none. */
export async function newestCopyIdentity(copies: RotatedCopy[]): Promise<CopyIdentity | null> {
  for (let i = copies.length - 1; i >= 0; i--) {
    const copy = copies[i]
    if (copy === undefined || copy.size === 0) continue
    const id = await copy.identity()
    if (id.fingerprintBytes > 0) return id
  }
  return null
}

/** The index of the copy the anchor names, -1 for "before every copy" (there was none), undefined when not found. */
async function anchorIndex(copies: RotatedCopy[], anchor: CopyIdentity | null): Promise<number | undefined> {
  if (anchor === null) return -1
  for (let i = copies.length - 1; i >= 0; i--) {
    const copy = copies[i]
    if (copy === undefined) continue
    const id = await copy.identity(anchor.fingerprintBytes)
    if (id.fingerprintBytes === anchor.fingerprintBytes && id.fingerprint === anchor.fingerprint) return i
  }
  return undefined
}

/** The index of the copy the position was taken on, or undefined. */
async function findOldFile(copies: RotatedCopy[], saved: SavedPosition): Promise<number | undefined> {
  // Renamed: the same inode (and still the same start: an inode can be reused).
  for (let i = copies.length - 1; i >= 0; i--) {
    const copy = copies[i]
    if (copy !== undefined && copy.plain && copy.dev === saved.dev && copy.ino === saved.ino && (await copy.holds(saved))) return i
  }
  // Copied (copytruncate) or compressed: a new inode, the same start. Nothing to compare when the file was empty.
  if (saved.fingerprintBytes === 0) return undefined
  for (let i = copies.length - 1; i >= 0; i--) {
    const copy = copies[i]
    if (copy !== undefined && (await copy.holds(saved))) return i
  }
  // The old file may be a copy that cannot be read: the oldest such one rotated since the last run.
  if (saved.newestCopy === undefined) return undefined
  const after = await anchorIndex(copies, saved.newestCopy)
  if (after === undefined) return undefined
  const unreadable = copies.findIndex((c, i) => i > after && c.problem !== undefined)
  return unreadable === -1 ? undefined : unreadable
}

const times = (n: number): string => (n === 1 ? 'once' : n === 2 ? 'twice' : `${n} times`)

/** Where to read the live file from, after the rotated copies it needs were read. */
export interface CatchUp {
  start: number
  lineNo: number
  /** The anchor to save with the new position. */
  newestCopy: CopyIdentity | null | undefined
}

/**
 * Reads what the log gained since `saved` in its rotated copies, oldest
 * first, and says where to go on in the live file (open as `live`). When
 * nothing was rotated, nothing is read here.
 */
export async function catchUpRotations(
  path: string,
  live: {fh: FileHandle; st: Stats},
  saved: SavedPosition,
  onLine: LineHandler,
  report: Report,
): Promise<CatchUp> {
  const sameInode = live.st.dev === saved.dev && live.st.ino === saved.ino
  if (sameInode && saved.fingerprintBytes > 0 && live.st.size >= saved.offset && (await liveHolds(live.fh, saved))) {
    return {start: saved.offset, lineNo: saved.line, newestCopy: saved.newestCopy}
  }
  const copies = await listRotatedCopies(path, live.st)
  try {
    // Which copies hold unread lines: from `first` on, the first one from `from` (the saved offset).
    let first: number | undefined
    let from = 0
    if (saved.fingerprintBytes > 0 || saved.newestCopy === undefined) {
      first = await findOldFile(copies, saved)
      if (first !== undefined) from = saved.offset
    } else {
      // Empty at the last read: every copy rotated since holds only unread lines.
      const after = await anchorIndex(copies, saved.newestCopy)
      if (after !== undefined) first = after + 1
    }
    if (first === undefined) {
      if (sameInode && saved.fingerprintBytes === 0) {
        // Empty at the last read, no anchor (a position saved by an older rcguard): read it from its start.
        return {start: 0, lineNo: 0, newestCopy: await newestCopyIdentity(copies)}
      }
      report.notes.push(
        sameInode
          ? live.st.size < saved.offset
            ? `${path} was truncated: reading it again from the start`
            : `${path} was replaced in place: reading it from the start`
          : `${path} is a new file and its previous one was not found: reading it from the start`,
      )
      for (const copy of copies) {
        if (copy.problem !== undefined) {
          report.warnings.push(`${copy.path}: ${copy.problem}; if it holds lines of ${path} not read yet, they are skipped`)
        }
      }
      return {start: 0, lineNo: 0, newestCopy: await newestCopyIdentity(copies)}
    }
    const toRead = copies.slice(first)
    if (toRead.length === 0) {
      // Nothing rotated since a read of an empty log.
      if (!sameInode) report.notes.push(`${path} is a new file: reading it from the start`)
      return {start: 0, lineNo: 0, newestCopy: saved.newestCopy ?? null}
    }
    const story: string[] = []
    let reads: string[] = []
    const flush = (): void => {
      if (reads.length > 0) story.push(`read ${reads.join(', ')}`)
      reads = []
    }
    for (const [i, copy] of toRead.entries()) {
      const start = i === 0 ? from : 0
      try {
        const r = await copy.read(start, i === 0 && from > 0 ? saved.line : 0, onLine)
        report.bytes += r.bytes
        report.lines += r.lines
        report.longLines += r.longLines
        if (r.longLines > 0) report.warnings.push(`${copy.path}: skipped ${r.longLines} line(s) longer than ${MAX_LINE_BYTES} bytes`)
        if (start > 0) story.push(`finished ${copy.path} from byte ${start}`)
        else reads.push(copy.path)
      } catch {
        report.warnings.push(`${copy.path}: ${copy.problem ?? 'cannot be read'}; the lines of ${path} in it that were not read yet are skipped`)
        flush()
        story.push(`could not read ${copy.path}`)
      }
    }
    flush()
    const what = sameInode ? 'copied and truncated' : 'rotated'
    const empty = saved.fingerprintBytes === 0 ? ' since it was read empty' : ''
    const then = sameInode ? 'then the truncated file from its start' : 'then the new file'
    report.notes.push(`${path} ${what} ${times(toRead.length)}${empty}: ${[...story, then].join(', ')}`)
    return {start: 0, lineNo: 0, newestCopy: await newestCopyIdentity(copies)}
  } finally {
    await Promise.all(copies.map((c) => c.close()))
  }
}

/** Whether the live file still starts as it did at the last read. */
async function liveHolds(fh: FileHandle, saved: SavedPosition): Promise<boolean> {
  const buf = Buffer.alloc(saved.fingerprintBytes)
  const {bytesRead} = await fh.read(buf, 0, buf.length, 0)
  return bytesRead === saved.fingerprintBytes && fingerprintOf(buf) === saved.fingerprint
}

/** The anchor for a position whose log has nothing rotated since: kept, or learnt once. */
export async function anchorFor(path: string, live: Stats, known: CopyIdentity | null | undefined): Promise<CopyIdentity | null> {
  if (known !== undefined) return known
  const copies = await listRotatedCopies(path, live)
  try {
    return await newestCopyIdentity(copies)
  } finally {
    await Promise.all(copies.map((c) => c.close()))
  }
}
