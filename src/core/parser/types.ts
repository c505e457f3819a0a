/** What the parser makes of one log line. */

export type GrammarId = 'F1' | 'F2' | 'F3' | 'F4'

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
   * Why the line itself is in doubt: `ambiguous` when header text could have
   * forged the address, `forged` when its shape shows attacker text (an
   * injected newline). Such lines never count and never clear a count.
   */
  doubt?: 'ambiguous' | 'forged'
  /** False when the envelope carries no time (stdout) and the read time stands in. */
  timed?: boolean
}

export interface ParsedLine {
  event: LoginEvent
}
