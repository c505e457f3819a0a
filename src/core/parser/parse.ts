/**
 * One log line in, one login event (or nothing) out.
 *
 * A line is an envelope (where the log driver put it, see envelopes.ts), an
 * optional `<session> ` prefix, then a body that one of the GRAMMARS
 * recognises. Anything else — PHP's own messages, stack traces, other
 * Roundcube errors — is not a login line and yields null.
 *
 * A LineParser is made per log and keeps what it learnt about that log (its
 * envelope, whether Roundcube writes session prefixes there) in a small state
 * object the caller saves with the log's position.
 */
import {NetworkList} from '../net/ip.js'
import {compilePhpDateFormat} from './dates.js'
import {ENVELOPE_IDS, ENVELOPES, type EnvelopeContext, type EnvelopeId} from './envelopes.js'
import {GRAMMARS, type ParseOptions} from './grammars.js'
import type {LoginEvent} from './types.js'

export type {ParseOptions} from './grammars.js'

/** Longest line the parser looks at; longer lines are skipped by the reader. */
export const MAX_LINE_BYTES = 64 * 1024

export type SessionPrefixMode = 'auto' | 'required' | 'optional'

/** How one log is written: from the configuration, per log. */
export interface LogFormat {
  /** Envelope, or auto to detect it from the lines. */
  format: 'auto' | EnvelopeId
  /** syslog identity (`syslog_id` in Roundcube), default `roundcube`. */
  ident: string
  /** Roundcube's `log_date_format`, when not the default. */
  dateFormat?: string
  /** IANA zone of times written without an offset (default: the host's). */
  timezone?: string
  /**
   * `required`: lines without a `<session>` prefix are refused (an injected
   * newline cannot forge one). `auto`: required once the log has shown one.
   * `optional`: never required (Roundcube 1.0, or `log_session_id = 0`).
   */
  sessionPrefix: SessionPrefixMode
}

export const DEFAULT_LOG_FORMAT: LogFormat = {format: 'auto', ident: 'roundcube', sessionPrefix: 'auto'}

/** What a LineParser learnt about its log; saved with the log's position. */
export interface LogParseState {
  envelope?: EnvelopeId
  /** The log has shown login lines with a session prefix. */
  prefixed?: boolean
}

export const DEFAULT_PARSE_OPTIONS: ParseOptions = {countErrors: new Set([0, 1, 4]), trustedProxies: new NetworkList([])}

const SESSION_PREFIX = /^<([A-Za-z0-9,-]{1,64})> /
/** 9999-12-31T23:59:59.999Z: later "times" come from a broken record, not a clock. */
const LATEST_TIME = 253_402_300_799_999
/** How Roundcube's login lines end; the end of a line is Roundcube's text, not the client's. */
const LOGIN_TAIL = / in session (?:[A-Za-z0-9,-]*|no-session)(?: \(error: -?\d{1,9}\))?$| on line \d+ \([A-Z]+ \S*\)$/
/** Lines of one entry looked at after a login line; more is no log entry Roundcube writes. */
const MAX_CONTINUATION = 16

const MESSAGE_BYTES = /"MESSAGE"\s*:\s*\[/

/** Cheap test that a line may hold a login event, before any regular expression runs. */
export function mayBeLoginLine(line: string): boolean {
  return line.includes('ogin failed for ') || line.includes('ailed login for ') || line.includes('uccessful login for ') || line.includes('FAILED login for ')
}

/** A parsed login line with where it stands. */
export interface SourcedLine {
  event: LoginEvent
  lineNo: number
  text: string
  file: string
}

/**
 * Looks one entry ahead before letting a login line count. A user name with
 * a newline splits Roundcube's entry over several physical lines: the first
 * keeps the genuine envelope and session prefix but ends with whatever the
 * attacker typed — a fake tail naming someone else — while the real tail
 * ends a continuation line. So when a login line's entry goes on over lines
 * that do not start an entry and one of them ends like a login line, the
 * physical lines are joined back into the one entry Roundcube wrote, whose
 * address is then read from its real end: the attacker is counted, nobody
 * else.
 */
export class EntryParser {
  private group: {first: SourcedLine; texts: string[]; tailAt: number; rest: SourcedLine[]} | null = null

  constructor(readonly parser: LineParser) {}

  get state(): LogParseState {
    return this.parser.state
  }

  feed(text: string, lineNo: number, file: string, emit: (line: SourcedLine) => void): void {
    const event = this.parser.parse(text)
    const group = this.group
    if (group !== null) {
      if (group.first.file === file && group.texts.length < MAX_CONTINUATION && !this.parser.isEntryStart(text)) {
        group.texts.push(text)
        if (LOGIN_TAIL.test(text)) group.tailAt = group.texts.length
        if (event !== null) group.rest.push({event, lineNo, text, file})
        return
      }
      this.finish(emit)
    }
    if (event !== null) this.group = {first: {event, lineNo, text, file}, texts: [], tailAt: 0, rest: []}
  }

  /** Emits the entry still held (at the end of a read). */
  finish(emit: (line: SourcedLine) => void): void {
    const group = this.group
    if (group === null) return
    this.group = null
    if (group.tailAt === 0) {
      emit(group.first)
    } else {
      const text = [group.first.text, ...group.texts.slice(0, group.tailAt)].join('\n')
      const whole = this.parser.parse(text)
      const note = `the user name holds a newline: the entry spans ${group.tailAt + 1} lines, read whole`
      if (whole !== null) {
        whole.reason = `${whole.reason} (${note})`
        emit({...group.first, event: whole, text})
      } else {
        const e = group.first.event
        e.counted = false
        e.doubt = 'forged'
        e.reason = `${note}; its end is not a login line's: not counted`
        emit(group.first)
      }
    }
    for (const line of group.rest) emit(line)
  }
}

export class LineParser {
  private readonly ctx: EnvelopeContext
  private readonly order: EnvelopeId[]
  private last: {line: string; env: {time: number; body: string; id: EnvelopeId} | null} | undefined
  /**
   * Lines older than this are history that cannot count (a log's first
   * read): they are passed over after their envelope, without parsing the
   * rest, and only counted in `skipped`.
   */
  skipBefore = -Infinity
  skipped = 0

  constructor(
    private readonly format: LogFormat,
    private readonly options: ParseOptions,
    readonly state: LogParseState,
    now: number,
  ) {
    this.ctx = {
      ident: format.ident,
      timezone: format.timezone,
      now,
      dateParser: format.dateFormat === undefined ? undefined : compilePhpDateFormat(format.dateFormat, format.timezone),
    }
    this.order = format.format === 'auto' ? [...ENVELOPE_IDS] : [format.format]
  }

  private unwrap(line: string, learn = true): {time: number; body: string; id: EnvelopeId} | null {
    const known = this.format.format === 'auto' ? this.state.envelope : undefined
    if (known !== undefined) {
      const r = ENVELOPES[known].match(line, this.ctx)
      if (r !== null) return {...r, id: known}
    }
    for (const id of this.order) {
      if (id === known) continue
      const r = ENVELOPES[id].match(line, this.ctx)
      if (r !== null) {
        if (learn && this.format.format === 'auto') this.state.envelope = id
        return {...r, id}
      }
    }
    return null
  }

  private prefixRequired(): boolean {
    return this.format.sessionPrefix === 'required' || (this.format.sessionPrefix === 'auto' && this.state.prefixed === true)
  }

  /** The time of a line's envelope, or null (for seeking in a log). */
  timeOf(line: string): number | null {
    const env = this.unwrap(line, false)
    return env === null || !Number.isFinite(env.time) ? null : env.time
  }

  /**
   * Whether a line starts a new log entry the way Roundcube writes one: its
   * envelope, and its `<session>` prefix where this log has them. A line that
   * does not is the continuation of the entry before it (an LF inside a user
   * name, a stack trace).
   */
  isEntryStart(line: string): boolean {
    // parse() of the same line has usually unwrapped it already.
    const env = line === this.last?.line ? this.last.env : this.unwrap(line, false)
    if (env === null) return false
    return !this.prefixRequired() || SESSION_PREFIX.test(env.body)
  }

  parse(line: string): LoginEvent | null {
    // A journal record whose MESSAGE is not valid UTF-8 holds it as an array
    // of byte values: its text can only be tested once decoded.
    const bytes = line.startsWith('{') && MESSAGE_BYTES.test(line)
    if (!bytes && !mayBeLoginLine(line)) return null
    const env = this.unwrap(line)
    this.last = {line, env}
    if (env === null || !Number.isFinite(env.time) || env.time < 0 || env.time > LATEST_TIME) return null
    if (env.time < this.skipBefore) {
      this.skipped++
      return null
    }
    if (bytes && !mayBeLoginLine(env.body)) return null
    let body = env.body
    let session: string | null = null
    const sp = SESSION_PREFIX.exec(body)
    if (sp !== null) {
      session = sp[1] ?? null
      body = body.slice(sp[0].length)
    }
    for (const grammar of GRAMMARS) {
      const prefix = grammar.prefixes.find((p) => body.startsWith(p))
      if (prefix === undefined) continue
      const result = grammar.parse(body.slice(prefix.length), this.options)
      if (result === null) return null
      const event = result as LoginEvent
      event.time = env.time
      event.session = session
      if (env.id === 'stdout') event.timed = false
      if (session !== null) {
        this.state.prefixed = true
      } else if (this.prefixRequired()) {
        event.counted = false
        event.doubt = 'forged'
        event.reason = 'no <session> prefix where this log always has one: possibly forged with an injected newline'
      }
      return event
    }
    return null
  }
}

/** Parses one line with default settings (tests, one-off use). */
export function parseLine(line: string, options: ParseOptions = DEFAULT_PARSE_OPTIONS, format: LogFormat = {...DEFAULT_LOG_FORMAT, sessionPrefix: 'optional'}, now = Date.now()): LoginEvent | null {
  return new LineParser(format, options, {}, now).parse(line)
}
