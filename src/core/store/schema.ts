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
 * Version 4: user names are kept cut to 64 characters and at most 3 per
 * entry (store/bounds.ts), and the file leaves out an entry's fields that hold
 * their default (store/codec.ts); in memory an entry is as before.
 */
import * as z from 'zod'
import {MAX_ACCOUNTS, MAX_NETWORKS, MAX_USER_LENGTH, MAX_WINDOW_ADDRESSES} from './bounds.js'
import {MAX_TRIED, RULE_PATTERN, TRIED_PATTERN} from '../decisions/windows.js'
import {MAX_SERIES, SERIES_KEY} from '../metrics/exposition.js'
import {
  entryAddressProblem,
  fingerprintProblem,
  FINGERPRINT_BYTES,
  instanceProblem,
  logPathProblem,
  MAX_TIME,
  networkProblem,
  whitelistCidrProblem,
} from './values.js'

export const SCHEMA_VERSION = 4

/**
 * Values are checked as well as types (values.ts): what rcguard never writes
 * is refused, so nothing unchecked reaches the firewall or the output.
 */
const ms = z.number().int().nonnegative().max(MAX_TIME, {message: 'a time after the year 9999'})

/** A string that `problem` accepts; its message names the stored text. */
function checked(problem: (text: string) => string | null) {
  return z.string().superRefine((text, ctx) => {
    const why = problem(text)
    if (why !== null) ctx.addIssue({code: 'custom', message: why})
  })
}

const address = checked(entryAddressProblem)
const instance = checked(instanceProblem)
const count = z.number().int().nonnegative()

export const entrySchema = z.object({
  /** An address, or a network (an IPv6 one of firewall.ipv6Prefix, one given to `rcguard block`), in canonical text (values.ts). */
  ip: address,
  instance,
  /** Failure times inside the current window, sorted. Cleared when a block starts. */
  failures: z.array(ms),
  /** Failed attempts counted since the entry was created. */
  attempts: count,
  firstSeen: ms,
  lastSeen: ms,
  lastUser: z.string(),
  /** When the current block started, or null when not blocked. */
  blockedAt: ms.nullable(),
  /** When the current block ends; null with blockedAt set means until deleted. */
  blockedUntil: ms.nullable(),
  /** How many times this address has been blocked (history kept across expiries). */
  blocks: count,
  /** When its last block ended (expiry), for forgetting the history after escalation.forgetDays; null: none ended yet. */
  lastBlockEnd: ms.nullable(),
  /** User names tried, distinct, most recent last (at most 3, each cut to 64 characters: store/bounds.ts), for notifications. */
  users: z.array(z.string()),
  /** A block made by hand (rcguard block): by whom or why; null: none given. */
  comment: z.string().nullable(),
  /** The rule that made its latest block (decisions/windows.ts RULE_PATTERN); absent: the first rule, or a block by hand. */
  rule: z.string().regex(RULE_PATTERN, 'not a rule rcguard names (e.g. failures:6/10)').optional(),
  /** The user windows' tags of the names tried, 4 hexadecimal digits per failure time, in the order of `failures` (decisions/windows.ts nameTag); absent: none. */
  tried: z
    .string()
    .max(MAX_TRIED * 4)
    .regex(TRIED_PATTERN, 'not name tags (4 hexadecimal digits each)')
    .optional(),
  /** Its newest successful login seen after it was first counted against (relaxes the windows); absent: none. */
  lastSuccess: ms.optional(),
})

/** A login line still waiting for its twin in the other log (F1 errors, F2 userlogins). */
export const twinSchema = z.object({
  instance,
  /** The `<session>` prefix, '' when the line has none. */
  session: z.string().max(256),
  grammar: z.enum(['F1', 'F2']),
  time: ms,
  /** The sender it was counted against; null when it was ambiguous alone. */
  ip: address.nullable(),
  /** When ambiguous: the senders its readings name. */
  senders: z.array(address).optional(),
  counted: z.boolean(),
})

export const ledgerSchema = z.object({
  twins: z.array(twinSchema),
  /** Failures per account (lowercased user name) of the last minute: who locked it (login_rate_limit). */
  accounts: z.array(z.object({instance, account: z.string(), ip: address, time: ms})),
})

/** An account under attack (decisions/accounts.ts): an episode of failures on one user name from many addresses. */
export const accountRecordSchema = z.object({
  instance,
  /** The user name as login_rate_limit counts it (trimmed, lowercased), cut as entries cut names. */
  account: z.string().max(MAX_USER_LENGTH),
  /** The episode's first and latest failure. */
  first: ms,
  last: ms,
  /** The most distinct addresses one window of the episode held. */
  addresses: count,
  /** When it was reported (the failure that completed the window); null: not yet. */
  reportedAt: ms.nullable(),
  /** The addresses of the current window, each with its newest failure on the account, …and how many failures it made on the account in the window when more than one (accountAlert.block). */
  recent: z.array(z.object({ip: address, time: ms, n: z.number().int().min(2).optional()})).max(MAX_WINDOW_ADDRESSES),
})

/** A network with an open window (networkBlock, decisions/networks.ts): distinct addresses of it that failed within the period. */
export const networkRecordSchema = z.object({
  instance,
  /** Canonical CIDR text of the network (its /ipv4Prefix or /ipv6Prefix). */
  network: checked(networkProblem),
  /** The first failure of its current episode (failures without a quiet period between them). */
  first: ms,
  /** The addresses of the window (or IPv6 networks, firewall.ipv6Prefix), each with its newest failure. */
  recent: z.array(z.object({ip: address, time: ms})).max(MAX_WINDOW_ADDRESSES),
})

/**
 * What the metrics textfile's counters (core/metrics) keep between runs: each series by its name and labels
 * as the exposition format writes it (`rcguard_blocks_total{instance="master",reason="failures"}`), and when
 * the last successful run ended. Optional and added without a schema bump: an older file lacks it (counting
 * starts at 0), an older rcguard drops it.
 */
export const metricsRecordSchema = z.object({
  series: z
    .record(z.string().max(512).regex(SERIES_KEY, 'not a series rcguard writes (rcguard_…{label="value",…})'), count)
    .refine((r) => Object.keys(r).length <= MAX_SERIES, {message: `more than ${MAX_SERIES} series`}),
  /** Epoch milliseconds; absent: no run has succeeded yet. */
  lastSuccess: ms.optional(),
})

/** How many failures (and successes) waiting for Redis a node keeps; past it the oldest go (they count here all the same). */
export const MAX_OUTBOX = 100_000

/**
 * What a cluster node (`cluster:`, core/cluster) keeps of the cluster between runs: the failures and successes
 * counted while Redis could not be reached, pushed at the next run that reaches it. Optional and added without a schema bump (as `metrics`): an older rcguard drops it.
 */
export const clusterRecordSchema = z.object({
  /** Counted failures not yet in Redis: each with its identity (node, file, offset), so a push made twice counts once. */
  outbox: z
    .array(
      z.object({
        instance,
        key: address,
        time: ms,
        tag: z.number().int().min(0).max(0xffff),
        id: z.string().min(1).max(300),
        /** The account tried (accountAlert), as accounts.ts keeps it; absent: not kept. */
        account: z.string().max(MAX_USER_LENGTH).optional(),
      }),
    )
    .max(MAX_OUTBOX),
  /** Successful logins not yet in Redis (they relax the windows but the first). */
  successes: z.array(z.object({instance, key: address, time: ms})).max(MAX_OUTBOX),
  /** When this node last reached Redis (Redis's clock; kept to the hour): a node away longer than tombstones last trusts the cluster's blocks over its own. */
  seen: ms.optional(),
})

export const whitelistEntrySchema = z.object({
  /** Canonical CIDR text. */
  cidr: checked(whitelistCidrProblem),
  comment: z.string().nullable(),
  added: ms,
})

const fingerprint = checked(fingerprintProblem)
/** How many first bytes a fingerprint covers: at most FINGERPRINT_BYTES (the reader allocates this many). */
const fingerprintBytes = z.number().int().nonnegative().max(FINGERPRINT_BYTES)

export const positionSchema = z.object({
  /** As stat gives them: a large inode number is no exact integer in a double. */
  dev: z.number().nonnegative(),
  ino: z.number().nonnegative(),
  offset: count,
  line: count,
  fingerprint,
  fingerprintBytes,
  /** The newest rotated copy when this was saved (its fingerprint), null: none; how a log read empty finds its rotated lines. */
  newestCopy: z.object({fingerprint, fingerprintBytes}).nullable().optional(),
  /** What the parser learnt about this log: its envelope, whether it writes session prefixes. */
  parser: z
    .object({
      envelope: z.enum(['file', 'stdout', 'php', 'syslog', 'rfc3339', 'journal-json']).optional(),
      prefixed: z.boolean().optional(),
      groupStyle: z.enum(['glued', 'spaced']).optional(),
    })
    .optional(),
  /** Per cause of doubtful lines: when it was last told, and how many lines were held back since. */
  warned: z.record(z.string().max(64), z.object({at: ms, held: count})).optional(),
})

export const dataSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  entries: z.array(entrySchema),
  whitelist: z.array(whitelistEntrySchema),
  positions: z.record(checked(logPathProblem), positionSchema),
  /** The backend and prefix whose objects are live, so a switch removes them; marked: they carry rcguard's mark (the prefix as any configuration allowed it). */
  firewall: z
    .object({
      backend: z.enum(['iptables', 'ipset', 'nftables', 'none']),
      prefix: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,9}$/, 'not a firewall prefix (1 to 10 letters, digits or "_", starting with a letter)'),
      /** Its objects carry rcguard's mark (firewall/backend.ts MARK): nothing unmarked is adopted any more. */
      marked: z.boolean().optional(),
      /** Its objects were removed on purpose (rcguard flush, enabled: false) since they were applied. */
      removed: z.enum(['flush', 'disabled']).optional(),
    })
    .optional(),
  /** What the attempt ledger keeps between runs. */
  ledger: ledgerSchema,
  /** Accounts under attack (accountAlert): open episodes and reported ones of the last days. */
  accounts: z.array(accountRecordSchema).max(MAX_ACCOUNTS).optional(),
  /** Networks with an open window (networkBlock): absent when none are kept. */
  networks: z.array(networkRecordSchema).max(MAX_NETWORKS).optional(),
  /** The Prometheus counters (metrics.textfile, core/metrics): absent when no textfile is configured. */
  metrics: metricsRecordSchema.optional(),
  /** A cluster node's own bookkeeping (cluster: in the configuration); absent: not in a cluster. */
  cluster: clusterRecordSchema.optional(),
})

export type Entry = z.infer<typeof entrySchema>
export type WhitelistEntry = z.infer<typeof whitelistEntrySchema>
export type StoreData = z.infer<typeof dataSchema>
export type StoredPosition = z.infer<typeof positionSchema>
export type TwinRecord = z.infer<typeof twinSchema>
export type LedgerData = z.infer<typeof ledgerSchema>
export type AccountRecord = z.infer<typeof accountRecordSchema>
export type NetworkRecord = z.infer<typeof networkRecordSchema>
export type MetricsRecord = z.infer<typeof metricsRecordSchema>
export type ClusterRecord = z.infer<typeof clusterRecordSchema>

export function emptyData(): StoreData {
  return {schemaVersion: SCHEMA_VERSION, entries: [], whitelist: [], positions: {}, ledger: {twins: [], accounts: []}}
}
