/**
 * The database file's bytes as parsed JSON, within memory and V8's limits.
 *
 * A small file is one JSON.parse of its text. A large one is not made into
 * one string: V8 refuses strings over 512 MiB (a database of an older
 * rcguard, which kept every user name whole, passes that at about 80,000
 * entries of a determined attack), and the text of a file that holds any
 * non-ASCII character would take two bytes a character. Instead the bytes are
 * scanned once for the top-level `entries` array and each of its items is
 * parsed on its own; the rest of the document (whitelist, positions, ledger)
 * is parsed with `entries` empty, then the items are put back. The result is
 * the same value JSON.parse would give; a file that is no valid JSON throws a
 * SyntaxError as JSON.parse does (its message may name another position).
 */
import {isAscii} from 'node:buffer'

/** Files up to this size are parsed whole: the text costs no more than the data it becomes. */
export const WHOLE_PARSE_BYTES = 32 << 20

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d

function text(bytes: Buffer, start = 0, end = bytes.length): string {
  // Pure ASCII (what schema 4 writes) as a one-byte string, without decoding.
  const slice = start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end)
  return isAscii(slice) ? slice.toString('latin1') : slice.toString('utf8')
}

/** Index just past the string whose opening quote is at `i`. */
function endOfString(bytes: Buffer, i: number): number {
  let j = i + 1
  for (;;) {
    const q = bytes.indexOf(QUOTE, j)
    if (q === -1) throw new SyntaxError('Unterminated string in JSON')
    // A quote preceded by an odd number of backslashes is escaped.
    let k = q - 1
    while (k > i && bytes[k] === BACKSLASH) k--
    if ((q - 1 - k) % 2 === 0) return q + 1
    j = q + 1
  }
}

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

/** Where the top-level `"entries": [` array's `[` is, or -1 (then the file is parsed whole). */
function findEntries(bytes: Buffer): number {
  let depth = 0
  let i = 0
  while (i < bytes.length) {
    const b = bytes[i]
    if (b === QUOTE) {
      const end = endOfString(bytes, i)
      if (depth === 1 && end - i === 9 && bytes.toString('latin1', i, end) === '"entries"') {
        let j = end
        while (isSpace(bytes[j])) j++
        if (bytes[j] === COLON) {
          j++
          while (isSpace(bytes[j])) j++
          if (bytes[j] === OPEN_ARRAY) return j
        }
      }
      i = end
      continue
    }
    if (b === OPEN_OBJECT || b === OPEN_ARRAY) depth++
    else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--
    // Anything but an object at the top: leave it to JSON.parse.
    if (depth === 0 && !isSpace(b) && b !== CLOSE_OBJECT) return -1
    i++
  }
  return -1
}

/** About this many bytes of entries are parsed at a time. */
export const BATCH_BYTES = 1 << 20

export function parseDatabaseJson(bytes: Buffer): unknown {
  if (bytes.length <= WHOLE_PARSE_BYTES) return JSON.parse(text(bytes))
  const open = findEntries(bytes)
  if (open === -1) return JSON.parse(text(bytes))
  const items: unknown[] = []
  // The items between two commas of the array's own level are parsed as one array: JSON.parse checks their syntax.
  const take = (from: number, to: number): void => {
    for (const item of JSON.parse(`[${text(bytes, from, to)}]`) as unknown[]) items.push(item)
  }
  let depth = 0
  let inString = false
  let batch = open + 1
  let cut = false
  let i = open + 1
  const n = bytes.length
  for (; i < n; i++) {
    const b = bytes[i]
    if (inString) {
      if (b === BACKSLASH) i++
      else if (b === QUOTE) inString = false
      continue
    }
    if (b === QUOTE) inString = true
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) depth++
    else if (b === CLOSE_OBJECT || (b === CLOSE_ARRAY && depth > 0)) depth--
    else if (depth === 0 && b === COMMA && i - batch >= BATCH_BYTES) {
      take(batch, i)
      batch = i + 1
      cut = true
    } else if (depth === 0 && b === CLOSE_ARRAY) break
  }
  if (i >= n) throw new SyntaxError('Unexpected end of JSON input')
  // After a cut the last batch must hold an item: `[1, ]` is no JSON.
  if (cut && bytes.subarray(batch, i).every(isSpace)) throw new SyntaxError(`Unexpected token ']' in JSON at position ${i}`)
  take(batch, i)
  // The rest of the document, with the array empty; then its items put back.
  const rest = JSON.parse(`${text(bytes, 0, open)}[]${text(bytes, i + 1)}`) as Record<string, unknown>
  rest.entries = items
  return rest
}
