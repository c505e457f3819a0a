/**
 * Entries: Roundcube's log entries from physical lines (see parse.ts for the
 * rules). In a file-style log an entry is its first line and every line after
 * it that cannot start one; in a syslog-style log the pieces of one message
 * are records of their own, interleaved with other requests', and are given
 * to their entry by process or session.
 */
import {MAX_ENTRY_CHARS, MAX_ENTRY_LINES, MESSAGE_BYTES, WEAK_REACH_CHARS, mayBeLoginLine, type Classified, type LineParser, type LogParseState, type SourcedLine} from './parse.js'

interface Group {
  first: Classified
  /** Interleaved records: which pieces can end the entry (1-based; 0 is its first line). */
  ends?: Set<number>
  lineNo: number
  file: string
  text: string
  more: string[]
  /** Pieces that look like login lines of their own, reported (never counted) after the entry. */
  pieces: SourcedLine[]
  chars: number
  /** Position (in characters read) where it started. */
  at: number
  /** The byte offset of its first line in its file (-1: not known). */
  offset: number
  overflow: boolean
}

/**
 * Groups physical lines into Roundcube's entries (see the file comment) and
 * emits one event per login entry. In a syslog-style log each process's
 * records are grouped on their own where the envelope names the process.
 */
function newGroup(first: Classified, lineNo: number, file: string, text: string, at: number, offset: number, records = false): Group {
  const g: Group = {first, lineNo, file, text, more: [], pieces: [], chars: text.length, at, offset, overflow: false}
  // Interleaved records: only the first line and the pieces given to the entry as its end can end it.
  if (records) g.ends = new Set([0])
  return g
}

function findLast<T>(list: readonly T[], fits: (t: T) => boolean): T | undefined {
  for (let i = list.length - 1; i >= 0; i--) {
    const t = list[i] as T
    if (fits(t)) return t
  }
  return undefined
}

/** An entry at the end of a log written less than this long ago may still be growing. */
const HOLD_MS = 5_000
/** With sub-second times: how soon after its entry's first record a piece comes, at the latest. */
const PIECE_MS = 50
/** How long (record time) an entry of a syslog-style log stays open for its pieces. */
const RECORD_OPEN_MS = 3_000
/** Entries open at once in a syslog-style log, at most. */
const MAX_OPEN_RECORDS = 512
/** The session id at the end of a userlogins piece. */
const SESSION_TAIL = / in session ([A-Za-z0-9,-]+)(?: \(error: -?\d{1,9}\))?$/

const FOR = Buffer.from(' for ')

/** Where ` for ` occurs in a buffer's lines, asked line after line: one scan per buffer, not one per line. */
class ForScan {
  private buf: Buffer | undefined
  private from = 0
  /** The first occurrence at or after `from`; -1: none up to the buffer's end; -2: not looked for. */
  private at = -2

  /** Whether bytes start to end hold ` for `. */
  has(buf: Buffer, start: number, end: number): boolean {
    if (buf !== this.buf || start < this.from) {
      this.buf = buf
      this.at = -2
    }
    this.from = start
    if (this.at !== -1 && this.at < start) this.at = buf.indexOf(FOR, start)
    return this.at !== -1 && this.at + FOR.length <= end
  }
}

export class EntryParser {
  private readonly open = new Map<string, Group>()
  /** syslog-style logs: the entries still open for their pieces, oldest first. */
  private readonly records: Group[] = []
  /** Without session prefixes: events held back until no later split entry can claim them as its pieces. */
  private readonly held: {line: SourcedLine; at: number}[] = []
  /**
   * Characters read (the `at` of entries): how far apart an entry and the
   * lines before it are, for a log without session prefixes. Once the log is
   * known to write them (which it then stays), positions only order entries,
   * and a line passed over from its bytes (skippable) adds its bytes.
   */
  private pos = 0
  private readonly forScan = new ForScan()

  constructor(readonly parser: LineParser) {}

  get state(): LogParseState {
    return this.parser.state
  }

  /**
   * Whether feed would pass over a line unread, told from its bytes (then it
   * needs not be decoded; the caller counts it and does not feed it). That is
   * the state in which feed itself looks at nothing but the line's login
   * text: no entry open, nothing held, the log known to write session
   * prefixes. mayBeLoginLine's texts all hold ` for ` and are ASCII, which
   * is in the bytes exactly where it is in the decoded line (UTF-8 uses no
   * ASCII byte inside another character, and the decoder never swallows
   * one); a line that starts with `{` (a journal record, whose MESSAGE may
   * be bytes) is left to feed.
   */
  skippable(bytes: Buffer, start: number, end: number): boolean {
    if (this.open.size !== 0 || this.records.length !== 0 || this.held.length !== 0 || !this.parser.prefixRequired()) return false
    if (bytes[start] === 0x7b || this.forScan.has(bytes, start, end)) return false
    this.pos += end - start + 1
    return true
  }

  /** A log reader's line handler (onLine), which also says from a line's bytes that it needs not see it (skippable). */
  skipping(
    onLine: (text: string, lineNo: number, file: string, offset: number) => void,
  ): ((text: string, lineNo: number, file: string, offset: number) => void) & {skip: (bytes: Buffer, start: number, end: number) => boolean} {
    return Object.assign(onLine, {skip: (bytes: Buffer, start: number, end: number) => this.skippable(bytes, start, end)})
  }

  feed(text: string, lineNo: number, file: string, emit: (line: SourcedLine) => void, offset = -1): void {
    const at = this.pos
    this.pos += text.length + 1
    if (this.open.size === 0 && this.records.length === 0 && this.parser.prefixRequired()) {
      // Nothing open: only a login line can matter (the common case, answered without unwrapping).
      const bytes = text.startsWith('{') && MESSAGE_BYTES.test(text)
      if (!bytes && !mayBeLoginLine(text)) return
    }
    const c = this.parser.classify(text)
    if (c.foreign) return
    if (this.parser.recordLog && c.env !== null && this.parser.prefixRequired()) {
      this.feedRecord(c, text, lineNo, file, at, offset, emit)
      return
    }
    const stream = c.env?.stream ?? ''
    if (c.start) {
      // Only login entries are kept; any other entry just ends the one before.
      const next = c.grammar !== null ? newGroup(c, lineNo, file, text, at, offset) : undefined
      this.finishStream(stream, emit, next)
      return
    }
    const g = this.open.get(stream)
    // A line that looks like a login line but cannot start an entry is client text: shown, never counted.
    const piece = c.env !== null && mayBeLoginLine(c.body) ? this.parser.forgedPiece(c) : null
    if (g === undefined || g.file !== file) {
      if (piece !== null) emit({event: piece, lineNo, text, file})
      return
    }
    if (piece !== null && g.pieces.length < 16) g.pieces.push({event: piece, lineNo, text, file})
    if (g.more.length >= MAX_ENTRY_LINES || g.chars > MAX_ENTRY_CHARS) {
      g.overflow = true
      return
    }
    // A record keeps its own envelope; a file line is all client text.
    const part = c.env !== null && this.parser.recordLog ? c.body : text
    g.more.push(part)
    g.chars += part.length + 1
    g.text = `${g.text}\n${text}`.slice(0, 4096)
  }

  /**
   * syslog and the journal: PHP sends each piece of a split message as a
   * record of its own, and the pieces of parallel requests interleave
   * (observed on Roundcube 1.6.5 through rsyslog). So several entries stay
   * open at once, for a few seconds of record time, and each piece is given
   * to one: by the writing process where the envelope names it; else an end
   * piece by its session (userlogins' `in session SID` begins with the
   * entry's prefix; an errors-log end cannot be forged, the user name being
   * lowercased, and goes to the latest entry of its shape). Only those end
   * pieces can end an entry; other pieces are the user name's middle, which
   * holds no address that counts.
   */
  private feedRecord(c: Classified, text: string, lineNo: number, file: string, at: number, offset: number, emit: (line: SourcedLine) => void): void {
    const env = c.env
    if (env === null) return
    // Entries whose pieces have all arrived long ago.
    while (this.records.length > 0 && ((this.records[0]?.first.env?.time ?? 0) < env.time - RECORD_OPEN_MS || this.records.length > MAX_OPEN_RECORDS)) {
      const g = this.records.shift()
      if (g !== undefined) this.emitGroup(g, emit)
    }
    const stream = env.stream
    if (c.start) {
      if (c.grammar === null) return
      if (stream !== undefined) {
        const i = this.records.findIndex((g) => g.first.env?.stream === stream)
        if (i !== -1) this.emitGroup(this.records.splice(i, 1)[0] as Group, emit)
      }
      // With the writing process known, its pieces come in order: read like a file's lines (last end wins).
      this.records.push(newGroup(c, lineNo, file, text, at, offset, stream === undefined))
      return
    }
    const piece = mayBeLoginLine(c.body) ? this.parser.forgedPiece(c) : null
    let owner: Group | undefined
    let end = false
    if (stream !== undefined) {
      owner = findLast(this.records, (g) => g.first.env?.stream === stream)
      end = owner !== undefined && (owner.first.grammar?.grammar.tail.test(c.body) ?? false)
    } else {
      // With sub-second times, a piece comes within moments of its entry's first record (PHP sends the
      // pieces of one message one after the other): an errors-log end (which no user name can imitate)
      // goes to an entry begun moments before.
      const near = (g: Group): boolean => !(env.precise === true && g.first.env?.precise === true) || env.time - (g.first.env?.time ?? 0) <= PIECE_MS
      const sid = SESSION_TAIL.exec(c.body)?.[1]
      if (sid !== undefined) {
        // Not limited by time: leaving out a late real end could leave a forged one alone. A piece of
        // another request naming this session is settled when the entry's possible ends are compared.
        owner = findLast(this.records, (g) => g.first.session !== null && (sid.startsWith(g.first.session) || g.first.session.startsWith(sid)) && g.first.grammar?.grammar.tail.test(c.body) === true)
        end = owner !== undefined
      } else {
        // An errors-log end names no session: it goes to the one open entry of its shape still waiting for
        // its end; with two or more waiting (parallel requests), to neither, which then count through their
        // userlogins lines rather than under each other's session (counted twice).
        const waiting = this.records.filter(
          (g) => near(g) && (g.ends?.size ?? 0) <= 1 && g.first.grammar?.grammar.tail.test(c.body) === true && g.first.grammar?.grammar.id !== 'F2' && g.first.grammar?.grammar.id !== 'F3',
        )
        owner = waiting.length === 1 ? waiting[0] : undefined
        end = owner !== undefined
      }
      owner ??= this.records.at(-1)
    }
    if (owner === undefined) {
      if (piece !== null) emit({event: piece, lineNo, text, file})
      return
    }
    if (piece !== null && owner.pieces.length < 16) owner.pieces.push({event: piece, lineNo, text, file})
    if (owner.more.length >= MAX_ENTRY_LINES || owner.chars > MAX_ENTRY_CHARS) {
      owner.overflow = true
      return
    }
    owner.more.push(c.body)
    owner.chars += c.body.length + 1
    if (end && owner.ends !== undefined) owner.ends.add(owner.more.length)
    owner.text = `${owner.text}\n${text}`.slice(0, 4096)
  }

  /** Emits the open entry of a stream, and opens `next` there. */
  private finishStream(stream: string, emit: (line: SourcedLine) => void, next: Group | undefined): void {
    const g = this.open.get(stream)
    // Replaced in place rather than deleted and set again: a Map that empties shrinks, and grows at the next set.
    if (next !== undefined) this.open.set(stream, next)
    else if (g !== undefined) this.open.delete(stream)
    if (g !== undefined) this.emitGroup(g, emit)
  }

  private emitGroup(g: Group, emit: (line: SourcedLine) => void): void {
    let event = this.parser.parseEntry(g.first, g.more, g.ends)
    if (event === null) return
    if (g.overflow) {
      event = {...event, counted: false, doubt: 'incomplete', reason: `a login entry longer than ${MAX_ENTRY_LINES} lines: not counted`}
    }
    const line: SourcedLine = {event, lineNo: g.lineNo, text: g.text, file: g.file, offset: g.offset}
    if (this.parser.prefixRequired()) {
      this.release(Infinity, emit)
      emit(line)
      for (const p of g.pieces) emit(p)
      return
    }
    // No session prefixes: a user name with a newline can end with a whole line that looks like one of
    // Roundcube's, and nothing tells it apart, except in the errors log, whose user names are lowercased
    // (its lines all have capitals). Unless the configuration says the log has no prefixes, only those count.
    if (event.counted && event.grammar !== 'F1' && !this.parser.prefixOptional) {
      event.counted = false
      event.doubt = 'forged'
      event.reason = 'this log shows no <session> prefixes, so this line may be a forged piece of a user name: not counted (set log_session_id = 8 in Roundcube, or sessionPrefix: optional to accept the risk)'
    }
    // An entry split by a newline may have swallowed the lines just before it.
    if (g.more.length > 0) {
      for (const h of this.held) {
        if (h.at >= g.at - WEAK_REACH_CHARS && h.line.event.counted) {
          h.line.event.counted = false
          h.line.event.doubt = 'forged'
          h.line.event.reason = 'may be a piece of the user name of the split entry that follows (this log writes no <session> prefixes): not counted'
        }
      }
    }
    this.release(g.at - WEAK_REACH_CHARS, emit)
    this.held.push({line, at: g.at})
    for (const p of g.pieces) this.held.push({line: p, at: g.at})
  }

  private release(before: number, emit: (line: SourcedLine) => void): void {
    while (this.held.length > 0 && (this.held[0]?.at ?? Infinity) < before) {
      const h = this.held.shift()
      if (h !== undefined) emit(h.line)
    }
  }

  /**
   * At the end of a read of a live file that grew meanwhile: the last entry,
   * when it was written less than HOLD_MS before `now`, may still be growing
   * (a write the reader saw in part: the lines seen may end with a piece of
   * the user name that imitates an end). It is dropped, unparsed, and its
   * start returned, for the next run to read it again from there. File-style logs only: in a
   * syslog-style log later entries of other processes follow it, and would be
   * read twice.
   */
  hold(file: string, now: number): {offset: number; line: number} | null {
    if (this.parser.recordLog || this.records.length > 0 || this.held.length > 0) return null
    const g = this.open.get('')
    if (g === undefined || g.file !== file || g.offset < 0 || (g.first.env?.time ?? -Infinity) < now - HOLD_MS) return null
    this.open.delete('')
    return {offset: g.offset, line: g.lineNo - 1}
  }

  /** Emits the entries still held (at the end of a read, or of a file). */
  finish(emit: (line: SourcedLine) => void): void {
    const groups = [...this.open.values(), ...this.records.splice(0)].sort((a, b) => a.at - b.at)
    this.open.clear()
    for (const g of groups) this.emitGroup(g, emit)
    this.release(Infinity, emit)
  }
}

