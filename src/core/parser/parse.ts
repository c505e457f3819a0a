/**
 * One log line in, one login event (or nothing) out.
 *
 * A line is an envelope (where Roundcube's logger put it: for now the file
 * driver's `[date]: `), an optional `<session> ` prefix, then a body that one
 * of the GRAMMARS recognises. Anything else — PHP's own messages, stack
 * traces, other Roundcube errors — is not a login line and yields null.
 */
import {parseEnvelopeDate} from './dates.js'
import {GRAMMARS, type ParseOptions} from './grammars.js'
import type {LoginEvent} from './types.js'

export type {ParseOptions} from './grammars.js'

export const DEFAULT_PARSE_OPTIONS: ParseOptions = {countErrors: new Set([0, 1, 4])}

/** Longest line the parser looks at; longer lines are skipped by the reader. */
export const MAX_LINE_BYTES = 64 * 1024

const FILE_ENVELOPE = /^\[([^\]]{1,64})\]: /
const SESSION_PREFIX = /^<([A-Za-z0-9,-]{1,64})> /

/** Cheap test that a line may hold a login event, before any regular expression runs. */
export function mayBeLoginLine(line: string): boolean {
  return line.includes('ogin failed for ') || line.includes('ailed login for ') || line.includes('uccessful login for ')
}

export function parseLine(line: string, options: ParseOptions = DEFAULT_PARSE_OPTIONS): LoginEvent | null {
  if (!mayBeLoginLine(line)) return null
  const env = FILE_ENVELOPE.exec(line)
  if (env === null) return null
  const time = parseEnvelopeDate(env[1] ?? '')
  if (time === null) return null
  let body = line.slice(env[0].length)
  let session: string | null = null
  const sp = SESSION_PREFIX.exec(body)
  if (sp !== null) {
    session = sp[1] ?? null
    body = body.slice(sp[0].length)
  }
  for (const grammar of GRAMMARS) {
    if (!body.startsWith(grammar.prefix)) continue
    const result = grammar.parse(body, options)
    if (result === null) return null
    return {...result, time, session}
  }
  return null
}
