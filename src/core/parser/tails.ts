/**
 * The fixed ends of Roundcube's login lines, read from the right by hand.
 *
 * Each function answers exactly what its regular expression (kept here, and
 * checked against it in test/core/tails.test.ts) answers, at a fraction of
 * the cost: the expressions are not anchored at the start, or begin with a
 * greedy `(.*)`, so the engine tries many starts on every line. Each tail has
 * one reading at most, read from the end: its variable parts (`\S+`, `\d+`,
 * `[A-Z]+`, a session id) cannot hold the character that comes before them,
 * so each is the longest run of its characters that ends where the next
 * fixed text begins.
 */

/** errors (F1): ` in FILE on line N (METHOD URI)` at the end. */
export const F1_TAIL = / in (\S+) on line (\d+) \(([A-Z]+) (\S*)\)$/
/** userlogins (F2): `USER from ADDR in session SID (error: N)`. */
export const F2_TAIL = /^(.*) in session ([A-Za-z0-9,-]*|no-session) \(error: (-?\d{1,9})\)$/s
/** userlogins (F3): `USER (ID: N) from ADDR in session SID`. */
export const F3_TAIL = /^(.*) in session ([A-Za-z0-9,-]*|no-session)$/s

/** Whether a UTF-16 code unit is white space as `\s` of a regular expression has it (WhiteSpace and LineTerminator). */
export function isRegexSpace(c: number): boolean {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13)
  if (c < 160) return false
  return c === 160 || c === 5760 || (c >= 8192 && c <= 8202) || c === 8232 || c === 8233 || c === 8239 || c === 8287 || c === 12288 || c === 65279
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57
}

/** [A-Za-z0-9,-] */
function isSidChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 44 || c === 45
}

/** Where the run of non-space characters that ends just before `end` starts. */
function nonSpaceStart(text: string, end: number): number {
  let i = end
  while (i > 0 && !isRegexSpace(text.charCodeAt(i - 1))) i--
  return i
}

/** F1's ` against HOST` (1.4+) at the end of a user name. */
export const F1_AGAINST = / against \S+$/

/** The user name without ` against HOST`, as .replace(F1_AGAINST, ''): HOST is the run of non-space characters at the end. */
export function withoutAgainst(user: string): string {
  const start = nonSpaceStart(user, user.length)
  return start === user.length || start < 9 || !user.startsWith(' against ', start - 9) ? user : user.slice(0, start - 9)
}

/** F1_TAIL: where the tail starts (the match's index) and METHOD, or null. */
export function f1Tail(text: string): {index: number; method: string} | null {
  const n = text.length
  if (text.charCodeAt(n - 1) !== 41) return null
  // URI: \S* up to the closing parenthesis, after one space.
  const uri = nonSpaceStart(text, n - 1)
  if (text.charCodeAt(uri - 1) !== 32) return null
  const methodEnd = uri - 1
  let i = methodEnd
  while (i > 0 && text.charCodeAt(i - 1) >= 65 && text.charCodeAt(i - 1) <= 90) i--
  // [A-Z]+ after ` (`.
  if (i === methodEnd || i < 2 || text.charCodeAt(i - 1) !== 40 || text.charCodeAt(i - 2) !== 32) return null
  const method = text.slice(i, methodEnd)
  const digitsEnd = i - 2
  i = digitsEnd
  while (i > 0 && isDigit(text.charCodeAt(i - 1))) i--
  // \d+ after ` on line `.
  if (i === digitsEnd || i < 9 || !text.startsWith(' on line ', i - 9)) return null
  const fileEnd = i - 9
  i = nonSpaceStart(text, fileEnd)
  // \S+ after ` in `.
  if (i === fileEnd || i < 4 || !text.startsWith(' in ', i - 4)) return null
  return {index: i - 4, method}
}

/** The session id that ends at `end` after ` in session `: where ` in session ` starts, or -1. */
function sessionTail(text: string, end: number): number {
  let i = end
  while (i > 0 && isSidChar(text.charCodeAt(i - 1))) i--
  return i >= 12 && text.startsWith(' in session ', i - 12) ? i - 12 : -1
}

/** F2_TAIL: the text before ` in session ` (group 1) and the error code (group 3), or null. */
export function f2Tail(text: string): {head: string; code: string} | null {
  const n = text.length
  if (text.charCodeAt(n - 1) !== 41) return null
  let i = n - 1
  while (i > 0 && isDigit(text.charCodeAt(i - 1))) i--
  const digits = n - 1 - i
  if (digits < 1 || digits > 9) return null
  if (text.charCodeAt(i - 1) === 45) i--
  const code = text.slice(i, n - 1)
  // ` (error: ` before the code.
  if (i < 9 || !text.startsWith(' (error: ', i - 9)) return null
  const at = sessionTail(text, i - 9)
  return at === -1 ? null : {head: text.slice(0, at), code}
}

/** F3_TAIL: the text before ` in session ` (group 1), or null. */
export function f3Tail(text: string): string | null {
  const at = sessionTail(text, text.length)
  return at === -1 ? null : text.slice(0, at)
}
