/**
 * Exit codes and the error type every core module throws. Commands turn an
 * RcguardError into one line on stderr and its exit code; nothing else.
 */
export const ExitCode = {
  OK: 0,
  /** Unexpected internal error (a bug): the message says so. */
  INTERNAL: 1,
  /** Bad command line: unknown flag, invalid address or CIDR argument. */
  USAGE: 2,
  /** The configuration file is missing, unreadable or invalid. */
  CONFIG: 3,
  /** The database is unreadable, corrupt or fails validation; it was left untouched. */
  STORE: 4,
  /** A firewall command failed (binary missing, no permission, kernel refused). The store was saved. */
  FIREWALL: 5,
  /** An address given to a command is not known to rcguard. */
  NOT_FOUND: 6,
  /**
   * What the command was to end still holds because of something it did not change: `unblock` of an
   * address that a wider network's block still covers, `whitelist --remove` of one that is still never
   * blocked. The command did the rest; the message names what holds and what lifts it.
   */
  STILL_IN_FORCE: 7,
  /** A cluster node's admin command could not reach the cluster's Redis: nothing was changed, here or there. */
  CLUSTER: 8,
  /** Another rcguard process holds the lock (EX_TEMPFAIL). `hacks` exits with it quietly. */
  BUSY: 75,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export class RcguardError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    readonly detail?: string,
  ) {
    super(message)
    this.name = 'RcguardError'
  }
}

export class ConfigError extends RcguardError {
  constructor(message: string) {
    super(message, ExitCode.CONFIG)
    this.name = 'ConfigError'
  }
}

export class StoreError extends RcguardError {
  constructor(message: string, detail?: string) {
    super(message, ExitCode.STORE, detail)
    this.name = 'StoreError'
  }
}

export class FirewallError extends RcguardError {
  constructor(message: string, detail?: string) {
    super(message, ExitCode.FIREWALL, detail)
    this.name = 'FirewallError'
  }
}

export class UsageError extends RcguardError {
  constructor(message: string) {
    super(message, ExitCode.USAGE)
    this.name = 'UsageError'
  }
}

export class BusyError extends RcguardError {
  constructor(message: string) {
    super(message, ExitCode.BUSY)
    this.name = 'BusyError'
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
