/**
 * The address field (ADDR) of Roundcube's login lines, as written by
 * rcube_utils::remote_ip(): REMOTE_ADDR, optionally followed by a group
 * `(X-Real-IP: …,X-Forwarded-For: …)`, glued to the address (≤ 1.4) or after
 * one space (≥ 1.5). Header values are copied verbatim from the request, so
 * they are attacker-controlled text.
 *
 * Lines are parsed from the right: the real tail always ends the line, so the
 * rightmost ` from ADDR` that is followed by a well-formed tail is the one
 * Roundcube wrote. Candidates further left can only come from the user name
 * (or from header text, which makes the line ambiguous).
 */
import {canonicalIp} from '../net/ip.js'


export interface AddressField {
  /** REMOTE_ADDR as written (may be empty). */
  raw: string
  /** Canonical form, or null when raw is empty or not an address. */
  ip: string | null
  /** The header group's content without its parentheses, or null. */
  headers: string | null
}

const GROUP_STARTS = ['(X-Real-IP: ', '(X-Forwarded-For: ']

function ipField(raw: string, headers: string | null): AddressField | null {
  if (raw === '') return {raw, ip: null, headers}
  const ip = canonicalIp(raw)
  if (ip === null) return null
  return {raw, ip, headers}
}

/** Characters an address field's first token can hold: [0-9A-Za-z:.%_-]. */
function isIpChar(c: number): boolean {
  return (c >= 48 && c <= 58) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 46 || c === 37 || c === 95 || c === 45
}

function ipToken(text: string): string {
  let i = 0
  while (i < text.length && i < 64 && isIpChar(text.charCodeAt(i))) i++
  return text.slice(0, i)
}

function groupStart(rest: string): string | null {
  const r = rest.startsWith(' ') ? rest.slice(1) : rest
  return GROUP_STARTS.some((g) => r.startsWith(g)) ? r : null
}

/** `IP[ ](HEADERS)` filling `text` exactly: the F2/F3 form, before ` in session`. */
export function parseAddressField(text: string): {addr: AddressField} | null {
  const raw = ipToken(text)
  const rest = text.slice(raw.length)
  let addr: AddressField | null
  if (rest.length === 0) {
    addr = ipField(raw, null)
  } else {
    const group = groupStart(rest)
    if (group === null || !group.endsWith(')')) return null
    addr = ipField(raw, group.slice(1, -1))
  }
  return addr === null ? null : {addr}
}

/**
 * The F1 form: `IP. SERVER-TEXT` or `IP[ ](HEADERS). SERVER-TEXT`. The dot
 * that ends the sentence is not part of the address. A group ends at its
 * last `). ` (the address before the group is not in doubt either way).
 */
export function parseSentenceAddressField(text: string): {addr: AddressField; rest: string} | null {
  const token = ipToken(text)
  if (token.endsWith('.') && text[token.length] === ' ') {
    const addr = ipField(token.slice(0, -1), null)
    return addr === null ? null : {addr, rest: text.slice(token.length + 1)}
  }
  const group = groupStart(text.slice(token.length))
  if (group === null) return null
  const end = group.lastIndexOf('). ')
  if (end === -1) return null
  const addr = ipField(token, group.slice(1, end))
  return addr === null ? null : {addr, rest: group.slice(end + 3)}
}

/**
 * Every ` from ADDR…` in `text` that `parse` accepts, rightmost first, at most
 * `limit` of them.
 */
export function addressCandidates<T extends {addr: AddressField}>(
  text: string,
  parse: (after: string) => T | null,
  limit = 8,
): (T & {at: number})[] {
  const found: (T & {at: number})[] = []
  let end = text.length
  while (found.length < limit && end >= 0) {
    const at = text.lastIndexOf(' from ', end)
    if (at === -1) break
    const parsed = parse(text.slice(at + 6))
    if (parsed !== null) found.push({...parsed, at})
    end = at - 1
  }
  return found
}

/**
 * The client address of a line from its candidates: the rightmost. The line
 * is ambiguous when that candidate carries a header group and another
 * candidate exists: the header text could then have been written to look like
 * the tail, or the user name to look like the address field, and no text rule
 * can tell which. A single candidate is never in doubt, whatever its header
 * values hold (a parenthesis there must not let a client hide its attempts).
 */
export function chooseAddress<T extends {addr: AddressField}>(candidates: T[]): {chosen: T; ambiguous: boolean} | null {
  const chosen = candidates[0]
  if (chosen === undefined) return null
  const h = chosen.addr.headers
  const ambiguous = h !== null && candidates.length > 1
  return {chosen, ambiguous}
}
