/**
 * Cutting a log's bytes into lines, whatever they come from (a plain file
 * read in chunks, a gzip stream), and the fingerprint that identifies a file
 * by its first bytes.
 */
import {createHash} from 'node:crypto'
import {MAX_LINE_BYTES} from '../parser/parse.js'

/**
 * One line: its text, its 1-based number, the file it is in, and the byte
 * offset where it starts there. A handler may also say, from a line's bytes
 * (start to end, without LF and trailing CR), that it needs not see it: the
 * line is then counted, and neither decoded nor handed over.
 */
export interface LineHandler {
  (text: string, lineNo: number, file: string, offset: number): void
  skip?: (bytes: Buffer, start: number, end: number) => boolean
}

/** How many of a file's first bytes its fingerprint covers (fewer when the file is shorter). */
export const FINGERPRINT_BYTES = 256

/** sha256 (hex, shortened) of a file's first bytes. */
export function fingerprintOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 32)
}

const EMPTY = Buffer.alloc(0)

/**
 * Takes a file's bytes chunk by chunk and calls onLine for each line, split
 * on LF (one trailing CR dropped), numbered on from `lineNo`. Lines longer
 * than the parser's limit are counted and skipped, so memory stays bounded.
 * What follows the last LF waits: `finish` delivers it, for a file that is
 * finished (a rotated copy); a live file leaves it for the next run.
 */
export class LineSplitter {
  lines = 0
  longLines = 0
  /** Bytes taken: up to just after the last LF (a skipped long line included). */
  consumed = 0
  private carry: Buffer = EMPTY
  private skipping = false
  private seen = 0

  constructor(
    private readonly file: string,
    private lineNo: number,
    private readonly onLine: LineHandler,
    /** The byte offset in the file of the first byte pushed. */
    private readonly base = 0,
  ) {}

  push(chunk: Buffer): void {
    let dataStart = this.seen - this.carry.length
    this.seen += chunk.length
    let data = chunk
    let from = 0
    if (this.carry.length > 0 && !this.skipping) {
      // The line the last chunk ended in: only it is joined (not the whole chunk copied after it).
      const nl = chunk.indexOf(0x0a)
      if (nl === -1 || this.carry.length + nl > MAX_LINE_BYTES) {
        data = Buffer.concat([this.carry, chunk])
      } else {
        const line = Buffer.concat([this.carry, chunk.subarray(0, nl)])
        this.deliver(line, 0, line.length, this.base + dataStart)
        from = nl + 1
        dataStart += this.carry.length
        this.consumed = dataStart + from
        this.carry = EMPTY
      }
    }
    if (this.skipping) {
      const nl = data.indexOf(0x0a)
      if (nl === -1) {
        this.carry = EMPTY
        return
      }
      this.skipping = false
      this.count(true)
      from = nl + 1
      this.consumed = dataStart + from
    }
    // Line by line on the bytes, so the length limit is in bytes whatever the text holds.
    for (let nl = data.indexOf(0x0a, from); nl !== -1; nl = data.indexOf(0x0a, from)) {
      this.deliver(data, from, nl, this.base + dataStart + from)
      from = nl + 1
      this.consumed = dataStart + from
    }
    const rest = data.subarray(from)
    if (rest.length > MAX_LINE_BYTES) {
      // A line longer than the limit: drop what we have and skip to its end.
      this.skipping = true
      this.carry = EMPTY
    } else {
      // A copy: the chunk's buffer is reused for the next read.
      this.carry = Buffer.from(rest)
    }
  }

  /** The end of a finished file: a last line without LF is a line too. */
  finish(): void {
    if (this.skipping) this.count(true)
    else if (this.carry.length > 0) this.deliver(this.carry, 0, this.carry.length, this.base + this.seen - this.carry.length)
    this.skipping = false
    this.carry = EMPTY
    this.consumed = this.seen
  }

  private deliver(data: Buffer, from: number, end: number, offset: number): void {
    if (end - from > MAX_LINE_BYTES) {
      this.count(true)
      return
    }
    this.count(false)
    const stop = end > from && data[end - 1] === 0x0d ? end - 1 : end
    if (this.onLine.skip?.(data, from, stop) === true) return
    this.onLine(data.toString('utf8', from, stop), this.lineNo, this.file, offset)
  }

  private count(long: boolean): void {
    this.lineNo++
    this.lines++
    if (long) this.longLines++
  }
}
