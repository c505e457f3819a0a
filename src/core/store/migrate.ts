/**
 * Brings a database file written by an older rcguard up to SCHEMA_VERSION.
 *
 * A migration sees the file as parsed JSON, never as the validated type: an
 * old file does not match the current schema, which is the point. Each step
 * is pure (no I/O), leaves its input as it was, and must accept every file
 * that its `from` version's schema accepted. Anything it does not recognise
 * (a field of the wrong type, an entry that is not an object) it leaves for
 * validation to report, so a broken file is still refused with the same
 * message rather than half repaired.
 *
 * To change the schema: bump SCHEMA_VERSION in schema.ts and append the step
 * from the old version here (test/core/migrate.test.ts fails until you do).
 */
import {SCHEMA_VERSION} from './schema.js'
import {boundUsers, cutUser} from './bounds.js'

type Doc = Record<string, unknown>

export interface Migration {
  from: number
  to: number
  /** One line: what the step changes, for the admin and the changelog. */
  summary: string
  up(doc: Doc): Doc
}

function isObject(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Oldest first, each step one version up; contiguous up to SCHEMA_VERSION. */
export const migrations: readonly Migration[] = [
  {
    from: 1,
    to: 2,
    summary: 'entries always carry users ([] when absent), comment and lastBlockEnd (null when absent)',
    up(doc) {
      const next = structuredClone(doc)
      next.schemaVersion = 2
      if (Array.isArray(next.entries)) {
        for (const entry of next.entries as unknown[]) {
          if (!isObject(entry)) continue
          // Version 1 files from before these fields existed lack them; present values are kept as they are.
          if (entry.users === undefined) entry.users = []
          if (entry.comment === undefined) entry.comment = null
          if (entry.lastBlockEnd === undefined) entry.lastBlockEnd = null
        }
      }
      return next
    },
  },
  {
    from: 2,
    to: 3,
    summary: "each entry's recent twin lines move to the database's ledger; the ledger of account failures starts empty",
    up(doc) {
      const next = structuredClone(doc)
      next.schemaVersion = 3
      const twins: unknown[] = []
      if (Array.isArray(next.entries)) {
        for (const entry of next.entries as unknown[]) {
          if (!isObject(entry)) continue
          const recent = entry.recent
          if (Array.isArray(recent)) {
            for (const r of recent as unknown[]) {
              // Only records of the twin shapes could ever be matched; anything else is dropped with the field.
              if (isObject(r) && (r.grammar === 'F1' || r.grammar === 'F2') && typeof r.session === 'string' && typeof r.time === 'number') {
                twins.push({instance: entry.instance, session: r.session, grammar: r.grammar, time: r.time, ip: entry.ip, counted: true})
              }
            }
            delete entry.recent
          }
        }
      }
      if (next.ledger === undefined) next.ledger = {twins, accounts: []}
      return next
    },
  },
  {
    from: 3,
    to: 4,
    summary: 'user names are kept cut to 64 characters, at most 3 per entry (the most recent); the file leaves out default fields',
    up(doc) {
      // Entry by entry, not the whole document at once: a version 3 file can be hundreds of megabytes.
      const {entries, ...others} = doc
      const next: Doc = {...structuredClone(others), schemaVersion: 4}
      next.entries = !Array.isArray(entries)
        ? structuredClone(entries)
        : (entries as unknown[]).map((item) => {
            const entry: unknown = structuredClone(item)
            if (!isObject(entry)) return entry
            if (typeof entry.lastUser === 'string') entry.lastUser = cutUser(entry.lastUser)
            if (Array.isArray(entry.users) && entry.users.every((u) => typeof u === 'string')) entry.users = boundUsers(entry.users as string[])
            return entry
          })
      return next
    },
  },
]

/**
 * Applies every step from the document's schemaVersion up to SCHEMA_VERSION,
 * in order. `from` is the version the document had (NaN when it has none);
 * `steps` names the steps applied, empty when there was nothing to do. A
 * document that is not an object, has no integer schemaVersion, or has one
 * older than the oldest step comes back as it was, for validation to refuse;
 * so does one newer than SCHEMA_VERSION, which the caller refuses itself.
 */
export function upgrade(raw: unknown): {data: unknown; from: number; steps: string[]} {
  if (!isObject(raw)) return {data: raw, from: Number.NaN, steps: []}
  const version = raw.schemaVersion
  if (typeof version !== 'number') return {data: raw, from: Number.NaN, steps: []}
  const oldest = migrations[0]?.from ?? SCHEMA_VERSION
  if (!Number.isInteger(version) || version < oldest || version >= SCHEMA_VERSION) return {data: raw, from: version, steps: []}
  let doc: Doc = raw
  const steps: string[] = []
  for (let v = version; v < SCHEMA_VERSION; ) {
    const step = migrations.find((m) => m.from === v)
    // A gap in the registry: leave the file alone rather than half migrate it (the registry test catches this).
    if (step === undefined || step.to <= v) return {data: raw, from: version, steps: []}
    doc = step.up(doc)
    steps.push(`${step.from} -> ${step.to}: ${step.summary}`)
    v = step.to
  }
  return {data: doc, from: version, steps}
}
