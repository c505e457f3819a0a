/**
 * The database document. Times are epoch milliseconds (JSON has no date type).
 * `schemaVersion` lets later versions migrate older files.
 */
import {z} from 'zod'

export const SCHEMA_VERSION = 1

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
  /** When its last block ended (expiry), for forgetting the history after escalation.forgetDays. */
  lastBlockEnd: ms.optional(),
  /** User names tried, distinct, most recent last (at most 10), for notifications. */
  users: z.array(z.string()).optional(),
  /** A block made by hand (rcguard block): by whom or why. */
  comment: z.string().optional(),
  /** Recent (session, source line shape) pairs, to count one attempt logged twice only once. */
  recent: z.array(z.object({session: z.string(), grammar: z.string(), time: ms})),
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
  /** What the parser learnt about this log: its envelope, whether it writes session prefixes. */
  parser: z
    .object({
      envelope: z.enum(['file', 'stdout', 'php', 'syslog', 'rfc3339', 'journal-json']).optional(),
      prefixed: z.boolean().optional(),
    })
    .optional(),
})

export const dataSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  entries: z.array(entrySchema),
  whitelist: z.array(whitelistEntrySchema),
  positions: z.record(z.string(), positionSchema),
  /** The backend and prefix whose objects are live, so a switch removes them. */
  firewall: z.object({backend: z.string(), prefix: z.string()}).optional(),
})

export type Entry = z.infer<typeof entrySchema>
export type WhitelistEntry = z.infer<typeof whitelistEntrySchema>
export type StoreData = z.infer<typeof dataSchema>
export type StoredPosition = z.infer<typeof positionSchema>

export function emptyData(): StoreData {
  return {schemaVersion: SCHEMA_VERSION, entries: [], whitelist: [], positions: {}}
}
