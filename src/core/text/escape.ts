/**
 * The one way text that rcguard did not write itself reaches a terminal,
 * cron mail or a digest. User names, log lines and headers come from the
 * attacker; log file names found by a glob, and error texts of tools, come
 * from the filesystem. Either can carry characters that a terminal or a mail
 * reader acts on instead of showing: ESC and CSI sequences (move the cursor,
 * rewrite the screen, set the window title), CR and line feeds (forge a
 * second line), U+2028/U+2029 (line breaks to many mail readers and JSON
 * viewers), bidi overrides and other format characters (show "gro.elpmaxe"
 * as "example.org"), lone surrogates and code points not yet assigned.
 *
 * escapeText writes each such character as an escape that is plain ASCII:
 * `\xNN` up to U+00FF, `\u{N}` above. A backslash in the text is doubled, so
 * an escape never means anything but the character it names. Everything else
 * (letters of every script, digits, punctuation, symbols, emoji, combining
 * marks) passes unchanged.
 */

/**
 * What is escaped: other (Cc control, Cf format, Cs surrogate, Co private
 * use, Cn unassigned), line and paragraph separators (Zl, Zp), and every
 * space separator (Zs) but the plain space.
 */
const UNSAFE = /(?! )[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]|\p{Cs}/u
const UNSAFE_OR_BACKSLASH = new RegExp(`\\\\|(?:${UNSAFE.source})`, 'gu')
/** In `lines` mode: the same, but line feeds and tabs of rcguard's own layout stay. */
const UNSAFE_IN_LINES = new RegExp(`(?![\\n\\t])(?:${UNSAFE.source})`, 'gu')

export interface EscapeOptions {
  /**
   * Cap on the result's length in UTF-16 units (an ellipsis included); never
   * cuts through an escape or a surrogate pair. Default: no cap.
   */
  max?: number
  /**
   * For a whole line or block rcguard composed (the last step before it is
   * written): line feeds and tabs are kept and backslashes are not doubled,
   * so that text already escaped stays as it is. Whatever the composition
   * let through is escaped all the same.
   */
  lines?: boolean
}

function encode(c: string): string {
  if (c === '\\') return '\\\\'
  const code = c.codePointAt(0) ?? 0
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`
}

/** Text from outside shown as one line (or, with `lines`, rcguard's own lines) that no terminal acts on. */
export function escapeText(text: string, options: EscapeOptions = {}): string {
  const {max, lines = false} = options
  if (max === undefined) return text.replace(lines ? UNSAFE_IN_LINES : UNSAFE_OR_BACKSLASH, encode)
  // With a cap, the text is walked as tokens (a code point, or the escape of one) so that a cut falls between them.
  const re = lines ? UNSAFE_IN_LINES : UNSAFE_OR_BACKSLASH
  let out = ''
  for (const point of text) {
    re.lastIndex = 0
    const token = re.test(point) ? encode(point) : point
    if (out.length + token.length > max) return cut(out, max)
    out += token
  }
  return out
}

/** Ends `out` (at most max units long, known to overflow with its next token) with an ellipsis within `max`. */
function cut(out: string, max: number): string {
  if (max <= 0) return ''
  // Tokens were appended whole; drop whole ones until the ellipsis fits.
  let s = out
  while (s.length > max - 1) s = dropLastToken(s)
  return `${s}…`
}

const LAST_TOKEN = /(?:\\x[0-9a-f]{2}|\\u\{[0-9a-f]{1,6}\}|\\\\|[\s\S])$/u

function dropLastToken(s: string): string {
  const m = LAST_TOKEN.exec(s)
  return m === null ? s.slice(0, -1) : s.slice(0, s.length - m[0].length)
}

/** Anything but printable ASCII, line feed, tab and carriage return: the only ASCII that UNSAFE matches is a control. */
const NOT_PLAIN_JSON = /[^\x20-\x7e\n\t\r]/
const UNSAFE_IN_JSON = new RegExp(`(?![\\n\\t\\r])(?:${UNSAFE.source})`, 'gu')

/** Whether a string holds nothing a terminal would act on (what escapeText guarantees of its result). */
export function isPrintable(text: string, options: {lines?: boolean} = {}): boolean {
  const re = options.lines === true ? UNSAFE_IN_LINES : new RegExp(UNSAFE.source, 'gu')
  re.lastIndex = 0
  return !re.test(text)
}

/**
 * JSON text with the same escaping, as JSON's own `\uXXXX` escapes: the
 * document means exactly the same data, but no byte of it acts on a
 * terminal. Only strings can hold such characters, so the structure is
 * untouched.
 */
export function escapeJson(json: string): string {
  // Printable ASCII and layout hold nothing to escape: the common case, answered without the Unicode scan.
  if (!NOT_PLAIN_JSON.test(json)) return json
  // Line feeds and tabs outside strings are layout (inside strings JSON.stringify has escaped them already).
  return json.replace(UNSAFE_IN_JSON, (c) => {
    let out = ''
    for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`
    return out
  })
}
