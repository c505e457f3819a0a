/**
 * The database document. Times are epoch milliseconds (JSON has no date type).
 * `schemaVersion` names the shape of the file; an older file is brought up to
 * this one by the steps in migrate.ts before it is validated, so bumping
 * SCHEMA_VERSION needs a migration there.
 *
 * Version 2: an entry's users, comment and lastBlockEnd are always present
 * ([] or null when there is nothing to say); version 1 left them out.
 * Version 3: the lines awaiting their twin and the recent failures per
 * account live in `ledger` (decisions/attempts.ts), not in each entry's
 * `recent`.
 */
import {z} from 'zod'

export const SCHEMA_VERSION = 3

const ms = z.number().int().nonnegative()

export const entrySchema = z.object({
  ip: z.string(),
  instance: z.string(),
  /** Failure times inside the current window, sorted. Cleared when a block starts. */
  failures: z.array(ms),
  /** Failed attempts counted since the entry was created. */
  attempts: z.number().int().nonnegative(),
  firstSeen: ms,
  lastSeen: ms,
  lastUser: z.string(),
  /** When the current block started, or null when not blocked. */
  blockedAt: ms.nullable(),
  /** When the current block ends; null with blockedAt set means until deleted. */
  blockedUntil: ms.nullable(),
  /** How many times this address has been blocked (history kept across expiries). */
  blocks: z.number().int().nonnegative(),
  /** When its last block ended (expiry), for forgetting the history after escalation.forgetDays; null: none ended yet. */
  lastBlockEnd: ms.nullable(),
  /** User names tried, distinct, most recent last (at most 10), for notifications. */
  users: z.array(z.string()),
  /** A block made by hand (rcguard block): by whom or why; null: none given. */
  comment: z.string().nullable(),
})

/** A login line still waiting for its twin in the other log (F1 errors, F2 userlogins). */
export const twinSchema = z.object({
  instance: z.string(),
  /** The `<session>` prefix, '' when the line has none. */
  session: z.string(),
  grammar: z.enum(['F1', 'F2']),
  time: ms,
  /** The sender it was counted against; null when it was ambiguous alone. */
  ip: z.string().nullable(),
  /** When ambiguous: the senders its readings name. */
  senders: z.array(z.string()).optional(),
  counted: z.boolean(),
})

export const ledgerSchema = z.object({
  twins: z.array(twinSchema),
  /** Failures per account (lowercased user name) of the last minute: who locked it (login_rate_limit). */
  accounts: z.array(z.object({instance: z.string(), account: z.string(), ip: z.string(), time: ms})),
})

export const whitelistEntrySchema = z.object({
  /** Canonical CIDR text. */
  cidr: z.string(),
  comment: z.string().nullable(),
  added: ms,
})

export const positionSchema = z.object({
  dev: z.number(),
  ino: z.number(),
  offset: z.number().int().nonnegative(),
  line: z.number().int().nonnegative(),
  fingerprint: z.string(),
  fingerprintBytes: z.number().int().nonnegative(),
  /** The newest rotated copy when this was saved (its fingerprint), null: none; how a log read empty finds its rotated lines. */
  newestCopy: z.object({fingerprint: z.string(), fingerprintBytes: z.number().int().nonnegative()}).nullable().optional(),
  /** What the parser learnt about this log: its envelope, whether it writes session prefixes. */
  parser: z
    .object({
      envelope: z.enum(['file', 'stdout', 'php', 'syslog', 'rfc3339', 'journal-json']).optional(),
      prefixed: z.boolean().optional(),
      groupStyle: z.enum(['glued', 'spaced']).optional(),
    })
    .optional(),
  /** Per cause of doubtful lines: when it was last told, and how many lines were held back since. */
  warned: z.record(z.string(), z.object({at: ms, held: z.number().nonnegative()})).optional(),
})

export const dataSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  entries: z.array(entrySchema),
  whitelist: z.array(whitelistEntrySchema),
  positions: z.record(z.string(), positionSchema),
  /** The backend and prefix whose objects are live, so a switch removes them; marked: they carry rcguard's mark. */
  firewall: z.object({backend: z.string(), prefix: z.string(), marked: z.boolean().optional()}).optional(),
  /** What the attempt ledger keeps between runs. */
  ledger: ledgerSchema,
})

export type Entry = z.infer<typeof entrySchema>
export type WhitelistEntry = z.infer<typeof whitelistEntrySchema>
export type StoreData = z.infer<typeof dataSchema>
export type StoredPosition = z.infer<typeof positionSchema>
export type TwinRecord = z.infer<typeof twinSchema>
export type LedgerData = z.infer<typeof ledgerSchema>

export function emptyData(): StoreData {
  return {schemaVersion: SCHEMA_VERSION, entries: [], whitelist: [], positions: {}, ledger: {twins: [], accounts: []}}
}
