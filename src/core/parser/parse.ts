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
const MESSAGE_BYTES = /"MESSAGE"\s*:\s*\[/

/** Cheap test that a line may hold a login event, before any regular expression runs. */
export function mayBeLoginLine(line: string): boolean {
  return line.includes('ogin failed for ') || line.includes('ailed login for ') || line.includes('uccessful login for ') || line.includes('FAILED login for ')
}

export class LineParser {
  private readonly ctx: EnvelopeContext
  private readonly order: EnvelopeId[]

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

  private unwrap(line: string): {time: number; body: string} | null {
    const known = this.format.format === 'auto' ? this.state.envelope : undefined
    if (known !== undefined) {
      const r = ENVELOPES[known].match(line, this.ctx)
      if (r !== null) return r
    }
    for (const id of this.order) {
      if (id === known) continue
      const r = ENVELOPES[id].match(line, this.ctx)
      if (r !== null) {
        if (this.format.format === 'auto') this.state.envelope = id
        return r
      }
    }
    return null
  }

  parse(line: string): LoginEvent | null {
    // A journal record whose MESSAGE is not valid UTF-8 holds it as an array
    // of byte values: its text can only be tested once decoded.
    const bytes = line.startsWith('{') && MESSAGE_BYTES.test(line)
    if (!bytes && !mayBeLoginLine(line)) return null
    const env = this.unwrap(line)
    if (env === null) return null
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
      const event: LoginEvent = {...result, time: env.time, session}
      if (session !== null) {
        this.state.prefixed = true
      } else if (this.format.sessionPrefix === 'required' || (this.format.sessionPrefix === 'auto' && this.state.prefixed === true)) {
        event.counted = false
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
