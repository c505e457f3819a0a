/**
 * Log lines in, login events out.
 *
 * A log is a sequence of *entries*, each written by Roundcube in one go: an
 * envelope (where the log driver put it, see envelopes.ts), an optional
 * `<session> ` prefix, then a message that one of the GRAMMARS recognises.
 * The user name is the only part of a login message that can hold a line
 * feed, so one entry may span several physical lines (or, through syslog,
 * several records), and every line after its first is the client's text,
 * whatever it looks like. Hence:
 * - an entry starts only at a line Roundcube could have started: its
 *   envelope, and its `<session>` prefix once the log is known to write them
 *   (a prefix cannot be typed into a user name: Roundcube strips tags);
 *   without prefixes, a line with no capital letter cannot start one either
 *   (the errors log lowercases user names, and every entry Roundcube starts
 *   has a capital);
 * - every other line belongs to the entry before it; the entry's real end is
 *   its last line that ends the way the entry's grammar ends, and the address
 *   is read from that line only.
 *
 * A LineParser is made per log and keeps what it learnt about the log (its
 * envelope, whether Roundcube writes session prefixes there) in a small state
 * object the caller saves with the log's position. An EntryParser groups the
 * physical lines into entries.
 */
import {compilePhpDateFormat} from './dates.js'
import {ENVELOPE_IDS, ENVELOPES, RECORD_ENVELOPES, type EnvelopeContext, type Enveloped, type EnvelopeId, type JournalTrust} from './envelopes.js'
import {grammarOf, result, type Grammar, type ParseOptions} from './grammars.js'
import {ProxyList} from './proxy.js'
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
   * `required`: only lines with a `<session>` prefix start an entry.
   * `auto`: required once the log has shown one. `optional`: never required
   * (Roundcube 1.0, or `log_session_id = 0`).
   */
  sessionPrefix: SessionPrefixMode
  /** journal-json: which records are the web server's. */
  journalTrust?: JournalTrust
}

export const DEFAULT_LOG_FORMAT: LogFormat = {format: 'auto', ident: 'roundcube', sessionPrefix: 'auto'}

/** What a LineParser learnt about its log; saved with the log's position. */
export interface LogParseState {
  envelope?: EnvelopeId
  /** The log has shown lines with a session prefix. */
  prefixed?: boolean
  /** How the log writes header groups, learnt from lines with one reading. */
  groupStyle?: 'glued' | 'spaced'
}

export const DEFAULT_PARSE_OPTIONS: ParseOptions = {countErrors: new Set([0, 1, 4]), trustedProxies: new ProxyList([])}

/** The session prefix, as sessionPrefixEnd reads it by hand (test/core/hand-parsing.test.ts checks the two agree). */
export const SESSION_PREFIX = /^<([A-Za-z0-9,-]{1,64})> /

/** Where the message after a `<session> ` prefix (SESSION_PREFIX) starts, or -1. */
export function sessionPrefixEnd(body: string): number {
  if (body.charCodeAt(0) !== 60) return -1
  const stop = Math.min(body.length, 65)
  let i = 1
  for (; i < stop; i++) {
    const c = body.charCodeAt(i)
    if (!((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 44 || c === 45)) break
  }
  return i > 1 && body.charCodeAt(i) === 62 && body.charCodeAt(i + 1) === 32 ? i + 2 : -1
}
/** 9999-12-31T23:59:59.999Z: later "times" come from a broken record, not a clock. */
const LATEST_TIME = 253_402_300_799_999
/** Physical lines (or records) one entry may span: a 1024-byte user name of line feeds, and some. */
export const MAX_ENTRY_LINES = 1100
/** Characters one joined entry may hold. */
export const MAX_ENTRY_CHARS = 256 * 1024
/**
 * Without session prefixes, lines this close before an entry that a newline
 * split may be pieces of its user name (at most 1024 bytes, plus the fixed
 * text): they are not counted.
 */
export const WEAK_REACH_CHARS = 1536

export const MESSAGE_BYTES = /"MESSAGE"\s*:\s*\[/

/**
 * Whether a line that ends like a userlogins line can end the entry of this
 * session: Roundcube writes the same session id in the prefix (its first
 * characters) and in `in session SID`. Text of another origin (a forged
 * piece, PHP echoing a client's text) names another session, or none.
 */
export function sameSession(piece: string, session: string | null): boolean {
  if (session === null) return true
  const m = SESSION_END.exec(piece)
  if (m === null) return true
  const sid = m[1] ?? ''
  if (sid === '' || sid === 'no-session') return true
  return sid.startsWith(session) || session.startsWith(sid)
}

const SESSION_END = / in session ([A-Za-z0-9,-]*|no-session)(?: \(error: -?\d{1,9}\))?$/

/** Cheap test that a line may hold a login event, before any regular expression runs. */
export function mayBeLoginLine(line: string): boolean {
  return line.includes('ogin failed for ') || line.includes('ailed login for ') || line.includes('uccessful login for ') || line.includes('FAILED login for ')
}

const UPPER = /[A-Z]/

function hasUpper(text: string): boolean {
  return UPPER.test(text)
}

/** A parsed login entry with where it stands. */
export interface SourcedLine {
  event: LoginEvent
  lineNo: number
  text: string
  file: string
  /** The byte offset of its (first) line in the file; -1 or absent: not known (a piece of a user name). */
  offset?: number
}

/** One physical line as the parser sees it. */
export interface Classified {
  /** The envelope, or null (a continuation, or another program's record). */
  env: Enveloped | null
  session: string | null
  /** The message after envelope and session prefix. */
  body: string
  /** Roundcube could have started an entry here. */
  start: boolean
  /** A record of another program in a syslog-style log: not part of any entry. */
  foreign: boolean
  /** When `start`: the grammar whose fixed start begins `body` (grammarOf, looked up once per line), or null; else null. */
  grammar: ReturnType<typeof grammarOf>
}

export class LineParser {
  private readonly ctx: EnvelopeContext
  private readonly order: EnvelopeId[]
  /**
   * Entries older than this are history that cannot count (a log's first
   * read): they are passed over without parsing, and only counted in
   * `skipped`.
   */
  skipBefore = -Infinity
  skipped = 0

  private readonly options: ParseOptions

  constructor(
    private readonly format: LogFormat,
    options: ParseOptions,
    readonly state: LogParseState,
    now: number,
  ) {
    this.options = {...options, ...(state.groupStyle === undefined ? {} : {groupStyle: state.groupStyle})}
    this.ctx = {
      ident: format.ident,
      timezone: format.timezone,
      now,
      dateParser: format.dateFormat === undefined ? undefined : compilePhpDateFormat(format.dateFormat, format.timezone),
      journalTrust: format.journalTrust,
    }
    this.order = format.format === 'auto' ? [...ENVELOPE_IDS] : [format.format]
  }

  private unwrap(line: string, learn: boolean): Classified['env'] {
    const known = this.format.format === 'auto' ? this.state.envelope : undefined
    if (known !== undefined) {
      const r = ENVELOPES[known].match(line, this.ctx)
      if (r !== null) return r
    }
    for (const id of this.order) {
      if (id === known) continue
      const r = ENVELOPES[id].match(line, this.ctx)
      if (r === null) continue
      // A log keeps its envelope. Once it writes session prefixes, only a prefixed line (which no
      // user name can forge) may show that the envelope changed; anything else is client text.
      if (known !== undefined && this.prefixRequired() && sessionPrefixEnd(r.body) === -1) return null
      if (learn && this.format.format === 'auto') this.state.envelope = id
      return r
    }
    return null
  }

  /** The configuration says this log writes no session prefixes (Roundcube 1.0, log_session_id 0). */
  get prefixOptional(): boolean {
    return this.format.sessionPrefix === 'optional'
  }

  /** Whether only prefixed lines start an entry in this log. */
  prefixRequired(): boolean {
    return this.format.sessionPrefix === 'required' || (this.format.sessionPrefix === 'auto' && this.state.prefixed === true)
  }

  /** Whether lines of this log are records each with its own envelope (syslog, journal). */
  get recordLog(): boolean {
    const id = this.format.format === 'auto' ? this.state.envelope : this.format.format
    return id !== undefined && RECORD_ENVELOPES.has(id)
  }

  /** The time of a line's envelope, or null (for seeking in a log). */
  timeOf(line: string): number | null {
    const env = this.unwrap(line, false)
    return env === null || !Number.isFinite(env.time) ? null : env.time
  }



  /** Splits one physical line into envelope, prefix and message, and says whether it can start an entry. */
  classify(line: string): Classified {
    const env = this.unwrap(line, true)
    if (env === null) return {env, session: null, body: line, start: false, foreign: this.recordLog, grammar: null}
    let body = env.body
    let session: string | null = null
    const sp = sessionPrefixEnd(body)
    if (sp !== -1) {
      session = body.slice(1, sp - 2)
      body = body.slice(sp)
      // A prefix cannot come from a user name (Roundcube strips tags): the log writes them.
      if (this.format.sessionPrefix === 'auto') this.state.prefixed = true
    }
    let start: boolean
    if (session !== null) start = true
    else if (this.prefixRequired()) start = false
    else start = hasUpper(line)
    return {env, session, body, start, foreign: false, grammar: start ? grammarOf(body) : null}
  }

  /**
   * The login event of one whole entry: its first line classified, and the
   * texts of its further lines (client text, joined with LF). Null when the
   * entry is not a login line.
   */
  parseEntry(first: Classified, more: readonly string[] = [], ends?: ReadonlySet<number>): LoginEvent | null {
    const env = first.env
    if (env === null || !first.start) return null
    if (!Number.isFinite(env.time) || env.time < 0 || env.time > LATEST_TIME) return null
    const g = first.grammar
    if (g === null) return null
    if (env.time < this.skipBefore) {
      this.skipped++
      return null
    }
    let event: LoginEvent | null
    if (more.length === 0) {
      // The prefix ends with a space: the grammar's text, cut out of the line rather than copied.
      event = this.finishEvent(g.grammar.parse(first.body.slice(g.prefix - 1), this.options), env, first.session)
    } else {
      event = this.joined(g.grammar, first.body.slice(g.prefix), more, env, first.session, ends)
    }
    if (event !== null && g.grammar.id === 'F4' && first.session !== null && event.counted) {
      // The plugin's 1.3 writes through Roundcube's logger (hence the prefix) and puts the request's
      // X-Forwarded-For there when there is one: the client's own text. Roundcube's own lines count it.
      event.counted = false
      event.reason = "the fail2ban plugin (1.3) writes the client's X-Forwarded-For there when it sends one: not counted; Roundcube's own lines count the attempt"
    }
    if (event !== null && env.untrusted !== undefined) {
      event.counted = false
      event.doubt = 'untrusted'
      event.reason = `not the web server's record: ${env.untrusted}`
    }
    return event
  }

  /** An entry a newline split: read whole up to its last line that ends like the grammar's lines. */
  private joined(
    grammar: Grammar,
    rest: string,
    more: readonly string[],
    env: NonNullable<Classified['env']>,
    session: string | null,
    /** Which pieces (1-based: 0 is the first line) can be the end, when the caller knows (interleaved records). */
    ends?: ReadonlySet<number>,
  ): LoginEvent | null {
    const pieces = [rest, ...more]
    let end = -1
    let chars = 0
    for (let i = 0; i < pieces.length; i++) {
      chars += (pieces[i] ?? '').length + 1
      if (chars > MAX_ENTRY_CHARS) break
      const piece = pieces[i] ?? ''
      if ((ends === undefined || ends.has(i)) && grammar.tail.test(piece) && sameSession(piece, session)) end = i
    }
    const lines = pieces.length
    if (end === -1) {
      const r = result(grammar.id, 'failure', null, rest, null, false, `a login line whose user name holds a newline, and its end never came (${lines} lines): not counted`)
      r.doubt = 'incomplete'
      return this.finishEvent(r, env, session)
    }
    if (ends !== undefined) {
      // Interleaved records: a piece given to this entry by its session may be another request's text
      // naming this session. Every end it could have must name the same sender.
      const candidates = [...ends].filter((i) => i <= end && grammar.tail.test(pieces[i] ?? '') && sameSession(pieces[i] ?? '', session)).slice(-8)
      // An end without an address (REMOTE_ADDR empty, which no web request has) names nobody to prefer.
      const named = candidates.map((i) => ({i, ip: grammar.parse(` ${pieces.slice(0, i + 1).join('\n')}`, this.options)?.ip ?? null})).filter((c) => c.ip !== null)
      const senders = new Set(named.map((c) => c.ip))
      if (senders.size === 1) end = (named.at(-1) as {i: number}).i
      if (senders.size > 1) {
        const list = [...senders].filter((ip): ip is string => ip !== null)
        const r = result(grammar.id, 'failure', list.at(-1) ?? null, rest, null, false, `ambiguous: syslog pieces of another request may end this entry: it could be from ${list.join(' or ')}`)
        r.doubt = 'ambiguous'
        r.senders = list
        return this.finishEvent(r, env, session)
      }
    }
    const text = pieces.slice(0, end + 1).join('\n')
    const note = `the user name holds ${end === 1 ? 'a newline' : `${end} newlines`}: read as one entry of ${end + 1} lines`
    const event = this.finishEvent(grammar.parse(` ${text}`, this.options), env, session)
    if (event === null) {
      const r = result(grammar.id, 'failure', null, rest, null, false, `${note}, whose end is no login line: not counted`)
      r.doubt = 'forged'
      return this.finishEvent(r, env, session)
    }
    // Lines after the end that are not Roundcube's (a PHP stack trace) do not make the user name hold a newline.
    if (end > 0) event.reason = `${event.reason} (${note})`
    return event
  }

  private finishEvent(result: Omit<LoginEvent, 'time' | 'session'> | null, env: NonNullable<Classified['env']>, session: string | null): LoginEvent | null {
    if (result === null) return null
    const event = result as LoginEvent
    if (event.groupStyle !== undefined && event.doubt === undefined && env.untrusted === undefined) {
      this.state.groupStyle = event.groupStyle
      this.options.groupStyle = event.groupStyle
    }
    event.time = env.time
    event.session = session
    if (env.id === 'stdout') event.timed = false
    return event
  }

  /** Parses one line as a whole entry (tests, one-off use, logs read a line at a time). */
  parse(line: string): LoginEvent | null {
    const bytes = line.startsWith('{') && MESSAGE_BYTES.test(line)
    if (!bytes && !mayBeLoginLine(line)) return null
    const c = this.classify(line)
    if (c.env === null) return null
    if (!c.start && mayBeLoginLine(c.body) && grammarOf(c.body) !== null) {
      // A login line that cannot start an entry: a piece of a user name.
      return this.forgedPiece(c)
    }
    return this.parseEntry(c)
  }

  /** The event reported for a line that looks like a login line but can only be client text. */
  forgedPiece(c: Classified): LoginEvent | null {
    const g = grammarOf(c.body)
    if (g === null || c.env === null) return null
    const parsed = g.grammar.parse(c.body.slice(g.prefix - 1), this.options)
    if (parsed === null) return null
    return this.finishEvent(
      {
        ...parsed,
        counted: false,
        doubt: 'forged',
        reason: this.prefixRequired() ? 'no <session> prefix where this log always has one: client text after a newline in a user name' : 'no capital letter: client text after a newline in a lowercased user name',
      },
      c.env,
      c.session,
    )
  }
}

/** Parses one line with default settings (tests, one-off use). */
export function parseLine(line: string, options: ParseOptions = DEFAULT_PARSE_OPTIONS, format: LogFormat = {...DEFAULT_LOG_FORMAT, sessionPrefix: 'optional'}, now = Date.now()): LoginEvent | null {
  return new LineParser(format, options, {}, now).parse(line)
}


export {EntryParser} from './entries.js'
