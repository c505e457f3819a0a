/**
 * The database's part in proving which firewall objects are rcguard's: its
 * record of the backend and prefix rcguard applied, and whether a run has
 * marked their objects since (see Ownership in backend.ts).
 */
import type {Ownership} from './backend.js'

export interface FirewallRecord {
  backend: string
  prefix: string
  /** A run of this rcguard applied the backend and prefix: every object it left carries the mark. */
  marked?: boolean
  /** Its objects were removed on purpose since (rcguard flush, enabled: false): the next run sets them up again, it does not correct drift. */
  removed?: 'flush' | 'disabled'
}

/**
 * What the objects of `backend` under `prefix` may be taken for: unmarked
 * ones of rcguard's exact shape are adopted only while the database records
 * that rcguard applied this backend and prefix and no run has marked them.
 */
export function ownershipOf(record: FirewallRecord | undefined, backend: string, prefix: string): Ownership {
  return {adopt: record !== undefined && record.backend === backend && record.prefix === prefix && record.marked !== true}
}

/** Records that `backend` under `prefix` is live and marked; whether the record changed (and must be written). */
export function recordMarked(data: {firewall?: FirewallRecord}, backend: string, prefix: string): boolean {
  const was = data.firewall
  if (was?.backend === backend && was.prefix === prefix && was.marked === true && was.removed === undefined) return false
  data.firewall = {backend, prefix, marked: true}
  return true
}
