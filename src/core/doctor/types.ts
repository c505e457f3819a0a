/** What `rcguard doctor` reports: one finding per problem, each with its fix. */
export type Severity = 'error' | 'warning' | 'info'

export interface Finding {
  /** Stable identifier (documented in rcguard(8)), e.g. `log-logins-off`. */
  id: string
  /** error: rcguard misses or miscounts attempts; warning: it works, with a cost the message names; info: nothing to change. */
  severity: Severity
  message: string
  fix: string
}

/** doctor's exit status: 0 nothing to fix, 1 warnings, 2 errors. */
export function doctorStatus(findings: readonly Finding[]): 0 | 1 | 2 {
  if (findings.some((f) => f.severity === 'error')) return 2
  if (findings.some((f) => f.severity === 'warning')) return 1
  return 0
}
