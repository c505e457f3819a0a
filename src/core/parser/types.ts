/** What the parser makes of one log line. */

export type GrammarId = 'F1' | 'F2' | 'F3' | 'F4'

export type Doubt = 'ambiguous' | 'forged' | 'incomplete' | 'untrusted' | 'proxy'

export interface LoginEvent {
  /** Which Roundcube line shape matched (see roundcube-log-formats: F1 errors, F2 failed, F3 successful). */
  grammar: GrammarId
  outcome: 'failure' | 'success'
  /** Epoch milliseconds, from the line's own timestamp. */
  time: number
  /** Canonical client address, or null when the line carries none that can be used. */
  ip: string | null
  /** The user name as logged: attacker-controlled text, for display only. */
  user: string
  /** The `<session>` prefix, when the line has one. */
  session: string | null
  /** `(error: N)` of F2 lines. */
  errorCode: number | null
  /** Whether this line counts as a failed login attempt. */
  counted: boolean
  /** One short phrase: why it counts or not. */
  reason: string
  /**
   * Why the line cannot be attributed, when it cannot (it then never counts
   * and never clears a count): `ambiguous` when the user name or header text
   * leaves two readings that name different senders, `forged` when its shape
   * shows client text (a piece of a user name split by a newline),
   * `incomplete` when an entry's end never came, `untrusted` when its source
   * is not the web server, `proxy` when a trusted proxy's header names no
   * client (or two).
   */
  doubt?: Doubt
  /** With `ambiguous`: the senders the readings name (its twin line in the other log may settle it). */
  senders?: string[]
  /** With `ambiguous`: each reading's user name and sender (who may have failed on which account). */
  readings?: {user: string; ip: string}[]
  /** With `proxy`: the proxy whose headers named no client or two. */
  proxy?: string
  /** How the line wrote its header group, when it had one reading: what the log's parser learns. */
  groupStyle?: 'glued' | 'spaced'
  /** False when the envelope carries no time (stdout) and the read time stands in. */
  timed?: boolean
}

export interface ParsedLine {
  event: LoginEvent
}
