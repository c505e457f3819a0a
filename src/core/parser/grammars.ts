/**
 * Event grammars: one object per Roundcube line shape. Adding a format is
 * adding an entry to GRAMMARS, not a branch in the parser.
 *
 * Every grammar parses the message body (envelope and session prefix already
 * removed) from the right, where Roundcube's own text ends the line, and never
 * trusts a ` from ` that the user name or a header could have supplied.
 */
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
}

export type GrammarResult = Omit<LoginEvent, 'time' | 'session'>

export interface Grammar {
  id: GrammarId
  /** The fixed text every line of this shape starts with (after envelope and session prefix). */
  prefix: string
  parse(body: string, options: ParseOptions): GrammarResult | null
}

function attribute(
  grammar: GrammarId,
  outcome: 'failure' | 'success',
  user: string,
  choice: {chosen: {addr: AddressField}; ambiguous: boolean},
  countable: {counted: boolean; reason: string},
  errorCode: number | null = null,
): GrammarResult {
  const ip = choice.chosen.addr.ip
  let {counted, reason} = countable
  if (choice.ambiguous) {
    counted = false
    reason = 'ambiguous: header text could have forged the address'
  } else if (ip === null) {
    counted = false
    reason = 'no usable client address'
  }
  return {grammar, outcome, ip, user, errorCode, counted: outcome === 'failure' && counted, reason}
}

const F2_TAIL = /^(.*) in session ([A-Za-z0-9,-]*|no-session) \(error: (-?\d{1,9})\)$/s
const F3_TAIL = /^(.*) in session ([A-Za-z0-9,-]*|no-session)$/s
const F3_ID = / \(ID: \d+\)$/
const F1_TAIL = / in (\S+) on line (\d+) \(([A-Z]+) (\S*)\)$/
const F1_SERVER_PREFIX = /^(?:LOGIN|AUTHENTICATE [A-Z0-9_-]+): /
const F1_NOT_A_GUESS = /^(?:Could not connect|Unable to negotiate TLS|Empty host|Configuration error|Login disabled)/
const F1_AGAINST = / against \S+$/

/** F2 — userlogins: `Failed login for USER from ADDR in session SID (error: N)`. */
const failedLogin: Grammar = {
  id: 'F2',
  prefix: 'Failed login for ',
  parse(body, options) {
    const m = F2_TAIL.exec(body)
    if (m === null) return null
    const head = (m[1] ?? '').slice(this.prefix.length - 1)
    const choice = chooseAddress(addressCandidates(head, parseAddressField))
    if (choice === null) return null
    const code = Number(m[3])
    const user = head.slice(1, choice.chosen.at)
    const countable = options.countErrors.has(code)
      ? {counted: true, reason: `failed login (error ${code})`}
      : {counted: false, reason: code === -2 ? 'storage error (error -2), not a password guess' : `error ${code} is not counted`}
    return attribute('F2', 'failure', user, choice, countable, code)
  },
}

/** F3 — userlogins: `Successful login for USER (ID: N) from ADDR in session SID`. */
const successfulLogin: Grammar = {
  id: 'F3',
  prefix: 'Successful login for ',
  parse(body) {
    const m = F3_TAIL.exec(body)
    if (m === null) return null
    const head = (m[1] ?? '').slice(this.prefix.length - 1)
    const choice = chooseAddress(addressCandidates(head, parseAddressField))
    if (choice === null) return null
    const user = head.slice(1, choice.chosen.at).replace(F3_ID, '')
    return attribute('F3', 'success', user, choice, {counted: false, reason: 'successful login'})
  },
}

/**
 * F1 — errors: `IMAP Error: Login failed for USER [against HOST] from ADDR.
 * SERVER-TEXT in FILE on line N (METHOD URI)`. Counted only for the login
 * form's POST; the same line on other requests is a logged-in session failing
 * to re-authenticate, and connection or TLS failures are the server's fault.
 */
const imapLoginFailed: Grammar = {
  id: 'F1',
  prefix: 'IMAP Error: Login failed for ',
  parse(body) {
    const tail = F1_TAIL.exec(body)
    if (tail === null) return null
    const head = body.slice(this.prefix.length - 1, tail.index)
    const choice = chooseAddress(addressCandidates(head, parseSentenceAddressField))
    if (choice === null) return null
    const user = head.slice(1, choice.chosen.at).replace(F1_AGAINST, '')
    const server = choice.chosen.rest.replace(F1_SERVER_PREFIX, '')
    const method = tail[3] ?? ''
    const uri = tail[4] ?? ''
    let countable: {counted: boolean; reason: string}
    if (F1_NOT_A_GUESS.test(server)) {
      countable = {counted: false, reason: 'IMAP connection or configuration error, not a password guess'}
    } else if (method !== 'POST' || !/[?&]_task=login(?:&|$)/.test(uri) || !/[?&]_action=login(?:&|$)/.test(uri)) {
      countable = {counted: false, reason: `not the login form (${method} request): session re-authentication`}
    } else {
      countable = {counted: true, reason: 'IMAP login failed'}
    }
    return attribute('F1', 'failure', user, choice, countable)
  },
}

export const GRAMMARS: readonly Grammar[] = [imapLoginFailed, failedLogin, successfulLogin]
