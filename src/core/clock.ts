/**
 * The time rcguard considers "now". RCGUARD_NOW (an ISO 8601 date) overrides
 * the system clock: the test suite uses it to check expiry without waiting,
 * and an admin can use it with --dry-run to ask "what would happen at T".
 */
import {UsageError} from './errors.js'

export type Clock = () => number

export function systemClock(env: NodeJS.ProcessEnv = process.env): Clock {
  const fixed = env.RCGUARD_NOW
  if (fixed === undefined || fixed === '') return () => Date.now()
  const t = Date.parse(fixed)
  if (Number.isNaN(t)) throw new UsageError(`RCGUARD_NOW is not an ISO 8601 date: ${fixed}`)
  return () => t
}
