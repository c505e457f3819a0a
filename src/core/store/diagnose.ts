/**
 * Which records of a database that fails validation are at fault, and what
 * the database would be without them: the basis of `rcguard flush --invalid`,
 * which removes exactly those records (after keeping the file as it was) so
 * that an admin never has to edit the JSON by hand.
 *
 * A record is one item of `entries`, `whitelist`, `ledger.twins`,
 * `ledger.accounts`, `accounts` or `networks`, one log's position, or the `firewall` note. A fault
 * outside any record (no schemaVersion, `entries` not a list, the file not an
 * object) cannot be repaired this way: `repaired` is null then.
 */
import type {z} from 'zod'
import {accountRecordSchema, dataSchema, entrySchema, ledgerSchema, networkRecordSchema, positionSchema, whitelistEntrySchema, type StoreData} from './schema.js'
import {logPathProblem, quoted} from './values.js'
import {entryProblemFree, validateData} from './codec.js'

export interface InvalidRecord {
  /** Where it is, as validation paths are written: `entries.3`, `positions./var/log/x.log`, `firewall`. */
  where: string
  /** What it is, for the admin: `the entry of "300.1.2.3" on master`. */
  what: string
  /** Its first fault: `ip: "300.1.2.3" is not an IPv4 or IPv6 address`. */
  problem: string
  /** An entry's `ip` or a whitelist entry's `cidr` as stored, when it is a string: what an admin may type to name it. */
  stored?: string
}

export interface Diagnosis {
  records: InvalidRecord[]
  /** The database without them, valid; null when a fault lies outside every record. */
  repaired: StoreData | null
}

/** One issue as `path: message`, a record key's own fault included. */
export function issueText(issue: z.core.$ZodIssue, prefix: PropertyKey[] = []): string {
  // A key of the file (a log's path) is shown quoted when it holds anything but printable ASCII.
  const path = [...prefix, ...issue.path].map((k) => (/^[\x21-\x7e]*$/.test(String(k)) ? String(k) : quoted(String(k)))).join('.')
  let message = issue.message
  if (issue.code === 'invalid_key' && issue.issues[0] !== undefined) message = `the key: ${issue.issues[0].message}`
  if (issue.code === 'invalid_union' && issue.errors[0]?.[0] !== undefined) message = issue.errors[0][0].message
  return `${path === '' ? '(top level)' : path}: ${message}`
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function text(v: unknown): string {
  return typeof v === 'string' ? quoted(v) : '(none)'
}

const twinSchema = ledgerSchema.shape.twins.element
const accountSchema = ledgerSchema.shape.accounts.element

/** Keeps the items `schema` accepts; records the others. */
function sift(
  list: unknown,
  schema: z.ZodType,
  where: string,
  what: (item: unknown) => string,
  out: InvalidRecord[],
  storedKey?: string,
  valid?: (item: unknown) => boolean,
): unknown {
  if (!Array.isArray(list)) return list
  const kept: unknown[] = []
  list.forEach((item, i) => {
    // The cheap check first (codec.ts): zod runs only on the items that fail it, for their messages.
    if (valid?.(item) === true) {
      kept.push(item)
      return
    }
    const r = schema.safeParse(item)
    if (r.success) kept.push(item)
    else {
      const stored = storedKey === undefined || !isObject(item) ? undefined : item[storedKey]
      out.push({
        where: `${where}.${i}`,
        what: what(item),
        problem: r.error.issues[0] === undefined ? 'invalid' : issueText(r.error.issues[0]),
        ...(typeof stored === 'string' ? {stored} : {}),
      })
    }
  })
  return kept
}

export function diagnose(doc: unknown): Diagnosis {
  const records: InvalidRecord[] = []
  if (!isObject(doc)) return {records, repaired: null}
  const next: Record<string, unknown> = {...doc}
  const field = (item: unknown, key: string): unknown => (isObject(item) ? item[key] : undefined)
  next.entries = sift(doc.entries, entrySchema, 'entries', (e) => `the entry of ${text(field(e, 'ip'))} on ${text(field(e, 'instance'))}`, records, 'ip', entryProblemFree)
  next.whitelist = sift(doc.whitelist, whitelistEntrySchema, 'whitelist', (w) => `the whitelist entry ${text(field(w, 'cidr'))}`, records, 'cidr')
  if (isObject(doc.positions)) {
    const positions: Record<string, unknown> = {}
    for (const [path, position] of Object.entries(doc.positions)) {
      const keyProblem = logPathProblem(path)
      const r = positionSchema.safeParse(position)
      if (keyProblem === null && r.success) positions[path] = position
      else {
        const problem = keyProblem !== null ? `the key: ${keyProblem}` : issueText(r.error?.issues[0] ?? {code: 'custom', path: [], message: 'invalid', input: undefined})
        records.push({where: `positions.${/^[\x21-\x7e]*$/.test(path) ? path : quoted(path)}`, what: `the position kept for the log ${quoted(path)}`, problem})
      }
    }
    next.positions = positions
  }
  if (isObject(doc.ledger)) {
    next.ledger = {
      ...doc.ledger,
      twins: sift(doc.ledger.twins, twinSchema, 'ledger.twins', (t) => `a login line of ${text(field(t, 'instance'))} awaiting its twin`, records),
      accounts: sift(doc.ledger.accounts, accountSchema, 'ledger.accounts', (a) => `a recent failure of ${text(field(a, 'ip'))} on ${text(field(a, 'instance'))}`, records),
    }
  }
  if (doc.accounts !== undefined) {
    next.accounts = sift(doc.accounts, accountRecordSchema, 'accounts', (a) => `the account under attack ${text(field(a, 'account'))} on ${text(field(a, 'instance'))}`, records)
  }
  if (doc.networks !== undefined) {
    next.networks = sift(doc.networks, networkRecordSchema, 'networks', (n) => `the failures from the network ${text(field(n, 'network'))} on ${text(field(n, 'instance'))}`, records)
  }
  if (doc.firewall !== undefined) {
    const r = dataSchema.shape.firewall.safeParse(doc.firewall)
    if (!r.success) {
      const issue = r.error.issues[0]
      records.push({where: 'firewall', what: 'the note of the firewall backend and prefix in use', problem: issue === undefined ? 'invalid' : issueText(issue)})
      delete next.firewall
    }
  }
  const parsed = validateData(next)
  return {records, repaired: parsed.success ? parsed.data : null}
}
