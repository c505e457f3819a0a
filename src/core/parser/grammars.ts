/**
 * Event grammars: one object per Roundcube line shape. Adding a format is
 * adding an entry to GRAMMARS, not a branch in the parser.
 *
 * Every grammar parses the message body from the right, where Roundcube's own
 * text ends the line, and never trusts a ` from ` that the user name or a
 * header could have supplied.
 */
import {canonicalIp, type NetworkList} from '../net/ip.js'
import {
  addressCandidates,
  chooseAddress,
  parseAddressField,
  parseSentenceAddressField,
  type AddressField,
} from './address.js'
import type {GrammarId, LoginEvent} from './types.js'

export interface ParseOptions {
  /** `(error: N)` codes of F2 lines that count as a failed attempt. */
  countErrors: ReadonlySet<number>
  /** Reverse proxies in front of Roundcube: when REMOTE_ADDR is one, the client comes from its headers. */
  trustedProxies: NetworkList
}

export type GrammarResult = Omit<LoginEvent, 'time' | 'session'>

export interface Grammar {
  id: GrammarId
  /** What the line says, for documentation and reports. */
  description: string
  /** The fixed text a line of this shape starts with (after envelope and session prefix). */
  prefixes: readonly string[]
  /** Parses the body after the prefix; null when it is not this shape after all. */
  parse(rest: string, options: ParseOptions): GrammarResult | null
}

interface Countable {
  counted: boolean
  reason: string
}

/**
 * Roundcube's own rule (rcube_utils::remote_addr) for the client behind a
 * trusted proxy: X-Forwarded-For from right to left, the first entry that is
 * not a trusted proxy; else X-Real-IP. Entries left of that one were written
 * by the client and are never used.
 */
export function clientBehindProxy(headers: string | null, trusted: NetworkList): string | null {
  if (headers === null) return null
  let xri: string | null = null
  let xff: string | null = null
  if (headers.startsWith('X-Real-IP: ')) {
    const rest = headers.slice('X-Real-IP: '.length)
    const join = rest.indexOf(',X-Forwarded-For: ')
    if (join === -1) xri = rest
    else {
      xri = rest.slice(0, join)
      xff = rest.slice(join + ',X-Forwarded-For: '.length)
    }
  } else if (headers.startsWith('X-Forwarded-For: ')) {
    xff = headers.slice('X-Forwarded-For: '.length)
  }
  if (xff !== null) {
    const hops = xff.split(',').map((h) => h.trim())
    for (let i = hops.length - 1; i >= 0; i--) {
      const ip = canonicalIp(hops[i] ?? '')
      if (ip === null) return null
      if (!trusted.has(ip)) return ip
    }
  }
  return xri === null ? null : canonicalIp(xri.trim())
}

function attribute(
  grammar: GrammarId,
  outcome: 'failure' | 'success',
  user: string,
  choice: {chosen: {addr: AddressField}; ambiguous: boolean},
  countable: Countable,
  options: ParseOptions,
  errorCode: number | null = null,
): GrammarResult {
  const {addr} = choice.chosen
  let ip = addr.ip
  let {counted, reason} = countable
  let doubt: GrammarResult['doubt']
  if (choice.ambiguous) {
    counted = false
    doubt = 'ambiguous'
    reason = 'ambiguous: header text could have forged the address'
  } else if (ip === null) {
    counted = false
    reason = 'no usable client address'
  } else if (options.trustedProxies.has(ip)) {
    const client = clientBehindProxy(addr.headers, options.trustedProxies)
    if (client === null) {
      counted = false
      reason = `from trusted proxy ${ip} without a usable X-Forwarded-For or X-Real-IP`
    } else {
      reason = `${reason}, client ${client} behind trusted proxy ${ip}`
    }
    ip = client
  }
  return {grammar, outcome, ip, user, errorCode, counted: outcome === 'failure' && counted, reason, ...(doubt === undefined ? {} : {doubt})}
}

const F2_TAIL = /^(.*) in session ([A-Za-z0-9,-]*|no-session) \(error: (-?\d{1,9})\)$/s
const F3_TAIL = /^(.*) in session ([A-Za-z0-9,-]*|no-session)$/s
const F3_ID = / \(ID: \d+\)$/
const F1_TAIL = / in (\S+) on line (\d+) \(([A-Z]+) (\S*)\)$/
const F1_SERVER_PREFIX = /^(?:LOGIN|AUTHENTICATE [A-Z0-9_-]+): /
const F1_NOT_A_GUESS = /^(?:Could not connect|Unable to negotiate TLS|Empty host|Configuration error|Login disabled)/
const F1_AGAINST = / against \S+$/
const LOGIN_TASK = /[?&]_task=login(?:&|$)/
const LOGIN_ACTION = /[?&]_action=(?:login|oauth)(?:&|$)/

/** F2 — userlogins: `Failed login for USER from ADDR in session SID (error: N)`. */
const failedLogin: Grammar = {
  id: 'F2',
  description: 'userlogins: Failed login for USER from ADDR in session SID (error: N)',
  prefixes: ['Failed login for '],
  parse(rest, options) {
    const m = F2_TAIL.exec(rest)
    if (m === null) return null
    const head = ` ${m[1] ?? ''}`
    const choice = chooseAddress(addressCandidates(head, parseAddressField))
    if (choice === null) return null
    const code = Number(m[3])
    const user = head.slice(1, choice.chosen.at)
    const countable: Countable = options.countErrors.has(code)
      ? {counted: true, reason: `failed login (error ${code})`}
      : {counted: false, reason: code === -2 ? 'storage error (error -2), not a password guess' : `error ${code} is not counted`}
    return attribute('F2', 'failure', user, choice, countable, options, code)
  },
}

/** F3 — userlogins: `Successful login for USER (ID: N) from ADDR in session SID`. */
const successfulLogin: Grammar = {
  id: 'F3',
  description: 'userlogins: Successful login for USER (ID: N) from ADDR in session SID',
  prefixes: ['Successful login for '],
  parse(rest, options) {
    const m = F3_TAIL.exec(rest)
    if (m === null) return null
    const head = ` ${m[1] ?? ''}`
    const choice = chooseAddress(addressCandidates(head, parseAddressField))
    if (choice === null) return null
    const user = head.slice(1, choice.chosen.at).replace(F3_ID, '')
    return attribute('F3', 'success', user, choice, {counted: false, reason: 'successful login'}, options)
  },
}

/**
 * F1 — errors: `IMAP Error: Login failed for USER [against HOST] from ADDR.
 * SERVER-TEXT in FILE on line N (METHOD URI)`. Counted only for the login
 * form's POST (or the OAuth login); the same line on other requests is a
 * logged-in session failing to re-authenticate, and connection or TLS
 * failures are the server's fault.
 */
const imapLoginFailed: Grammar = {
  id: 'F1',
  description: 'errors: IMAP Error: Login failed for USER [against HOST] from ADDR. SERVER-TEXT in FILE on line N (METHOD URI)',
  prefixes: ['IMAP Error: Login failed for '],
  parse(rest, options) {
    const tail = F1_TAIL.exec(rest)
    if (tail === null) return null
    const head = ` ${rest.slice(0, tail.index)}`
    const choice = chooseAddress(addressCandidates(head, parseSentenceAddressField))
    if (choice === null) return null
    const user = head.slice(1, choice.chosen.at).replace(F1_AGAINST, '')
    const server = choice.chosen.rest.replace(F1_SERVER_PREFIX, '')
    const method = tail[3] ?? ''
    const uri = tail[4] ?? ''
    let countable: Countable
    if (F1_NOT_A_GUESS.test(server)) {
      countable = {counted: false, reason: 'IMAP connection or configuration error, not a password guess'}
    } else if (method !== 'POST' || !LOGIN_TASK.test(uri) || !LOGIN_ACTION.test(uri)) {
      countable = {counted: false, reason: `not the login form (${method} request): session re-authentication`}
    } else {
      countable = {counted: true, reason: 'IMAP login failed'}
    }
    return attribute('F1', 'failure', user, choice, countable, options)
  },
}

/**
 * F4 — the third-party "fail2ban" plugin: `FAILED login for USER from ADDR`
 * (v1.1 adds a `[roundcube] ` prefix). Its v1.3 writes the raw
 * X-Forwarded-For header when there is one: a list, or anything the client
 * sent, so only a single address is believed.
 */
const pluginFailed: Grammar = {
  id: 'F4',
  description: 'plugin: FAILED login for USER from ADDR',
  prefixes: ['FAILED login for ', '[roundcube] FAILED login for '],
  parse(rest, options) {
    const head = ` ${rest}`
    const at = head.lastIndexOf(' from ')
    if (at === -1) return null
    const raw = head.slice(at + 6)
    const ip = canonicalIp(raw)
    const user = head.slice(1, at)
    if (ip === null) {
      if (!/^[\w.:%, -]*$/.test(raw)) return null
      return {
        grammar: 'F4', outcome: 'failure', ip: null, user, errorCode: null, counted: false,
        reason: 'the plugin wrote a list of addresses (its X-Forwarded-For): not believed',
      }
    }
    return attribute('F4', 'failure', user, {chosen: {addr: {raw, ip, headers: null}}, ambiguous: false}, {counted: true, reason: 'failed login (plugin line)'}, options)
  },
}

export const GRAMMARS: readonly Grammar[] = [imapLoginFailed, failedLogin, successfulLogin, pluginFailed]
