/**
 * The database file's form (schema version 4) and the checks that make
 * reading a large one cheap.
 *
 * In the file, an entry leaves out every field that holds its default: no
 * failures ([]), no attempts or blocks (0), no block (blockedAt,
 * blockedUntil, lastBlockEnd null), no users ([]), no comment (null), and
 * lastUser when it is the last of users ('' without users). ip, instance,
 * firstSeen and lastSeen are always written. Field names stay those of the
 * schema, so a validation message's path (`entries.3.ip`) names what the file
 * holds. This makes an entry about 1.5 times smaller than written in full; in
 * memory every entry has every field (decodeEntries).
 *
 * The file is written a piece at a time (encodeChunks), so its size is bound
 * by the disk, not by the longest string V8 can make (512 MiB).
 *
 * Validation of the entries: each is checked by hand (entryProblemFree) for
 * exactly what entrySchema accepts, which costs a small fraction of zod's
 * per-entry parse on a large database; only when an entry fails is zod run,
 * so every message is still zod's and values.ts's (test/core/codec.test.ts
 * checks that the two agree on arbitrary entries).
 */
import type {z} from 'zod'
import {dataSchema, type Entry, type StoreData} from './schema.js'
import {entryAddressProblem, instanceProblem, MAX_TIME} from './values.js'
import {MAX_TRIED, RULE_PATTERN, TRIED_PATTERN} from '../decisions/windows.js'

type Doc = Record<string, unknown>

function isObject(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A field as the file holds it, or its default when the file leaves it out. */
function or<T>(value: unknown, fallback: T): unknown {
  return value === undefined ? fallback : value
}

/**
 * Every entry of a schema 4 document with each left-out field filled with
 * its default (a new object per entry, every field in the schema's order);
 * anything that is no object is left for validation to refuse. Fields the
 * schema does not know are dropped, as validation would. The document's
 * entries array is reused: pass a document nothing else holds (as parsed).
 */
export function decodeEntries(doc: unknown): unknown {
  if (!isObject(doc) || !Array.isArray(doc.entries)) return doc
  // Item by item in place: each item as parsed can be collected as soon as its entry is made.
  const entries = doc.entries as unknown[]
  for (let i = 0; i < entries.length; i++) entries[i] = decodeEntry(entries[i])
  return {...doc, entries}
}

function decodeEntry(item: unknown): unknown {
  if (!isObject(item)) return item
  {
    const users = or(item.users, [])
    const lastOfUsers = Array.isArray(users) && users.length > 0 ? users[users.length - 1] : ''
    const entry: Doc = {
      ip: item.ip,
      instance: item.instance,
      failures: or(item.failures, []),
      attempts: or(item.attempts, 0),
      firstSeen: item.firstSeen,
      lastSeen: item.lastSeen,
      lastUser: or(item.lastUser, lastOfUsers),
      blockedAt: or(item.blockedAt, null),
      blockedUntil: or(item.blockedUntil, null),
      blocks: or(item.blocks, 0),
      lastBlockEnd: or(item.lastBlockEnd, null),
      users,
      comment: or(item.comment, null),
    }
    // The windows' fields, only where the file has them (most entries have none).
    if (item.rule !== undefined) entry.rule = item.rule
    if (item.tried !== undefined) entry.tried = item.tried
    if (item.lastSuccess !== undefined) entry.lastSuccess = item.lastSuccess
    return entry
  }
}

/** Whether entrySchema's `tried` accepts `v`: name tags, 4 hexadecimal digits each, at most MAX_TRIED. */
function isTried(v: unknown): boolean {
  return typeof v === 'string' && v.length <= MAX_TRIED * 4 && TRIED_PATTERN.test(v)
}

const isTime = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_TIME
const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const isTimeOrNull = (v: unknown): boolean => v === null || isTime(v)

/** Whether entrySchema accepts `e` (it must agree exactly: see the module comment). */
export function entryProblemFree(e: unknown): boolean {
  if (!isObject(e)) return false
  const {ip, instance, failures, users, comment, lastUser} = e
  if (typeof ip !== 'string' || entryAddressProblem(ip) !== null) return false
  if (typeof instance !== 'string' || instanceProblem(instance) !== null) return false
  if (!Array.isArray(failures)) return false
  for (const t of failures as unknown[]) if (!isTime(t)) return false
  if (!isCount(e.attempts) || !isTime(e.firstSeen) || !isTime(e.lastSeen) || typeof lastUser !== 'string') return false
  if (!isTimeOrNull(e.blockedAt) || !isTimeOrNull(e.blockedUntil) || !isCount(e.blocks) || !isTimeOrNull(e.lastBlockEnd)) return false
  if (!Array.isArray(users)) return false
  for (const u of users as unknown[]) if (typeof u !== 'string') return false
  if (e.rule !== undefined && !(typeof e.rule === 'string' && RULE_PATTERN.test(e.rule))) return false
  if (e.tried !== undefined && !isTried(e.tried)) return false
  if (e.lastSuccess !== undefined && !isTime(e.lastSuccess)) return false
  return comment === null || typeof comment === 'string'
}

/**
 * dataSchema.safeParse, cheaply when every entry is valid: the entries are
 * checked by hand and the rest of the document by zod. The entries of the
 * result are the document's own (fresh objects when they come from
 * decodeEntries). When anything fails, zod parses the whole document, so the
 * issues are exactly its own.
 */
export function validateData(doc: unknown): z.ZodSafeParseResult<StoreData> {
  if (isObject(doc) && Array.isArray(doc.entries) && (doc.entries as unknown[]).every(entryProblemFree)) {
    const rest = dataSchema.safeParse({...doc, entries: []})
    if (rest.success) {
      rest.data.entries = doc.entries as Entry[]
      return rest
    }
  }
  return dataSchema.safeParse(doc)
}

const NON_ASCII = /[\u0080-\uffff]/g
const HAS_NON_ASCII = /[\u0080-\uffff]/

/**
 * JSON.stringify's text with every character past ASCII written as a \uXXXX
 * escape: the file is then pure ASCII, which reads as a string of one byte a
 * character (one non-ASCII character makes V8 keep the whole text at two).
 */
export function asciiJson(value: unknown): string {
  return ascii(JSON.stringify(value))
}

/** JSON text with every character past ASCII as a \uXXXX escape (such characters are only ever inside its strings). */
function ascii(json: string): string {
  return HAS_NON_ASCII.test(json) ? json.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : json
}

/** A string as ASCII JSON text: quoted as it is when it is printable ASCII without `"` or `\\` (most user names), else asciiJson. */
function stringJson(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return asciiJson(s)
  }
  return `"${s}"`
}

/**
 * One entry as the file holds it: defaults left out (see the module comment),
 * in ASCII. Only its user names and comment can hold anything past ASCII, so
 * only they are escaped, each a short string: a scan of every megabyte of
 * the file flattened and scanned it whole (about a quarter slower at 100,000
 * entries).
 */
export function encodeEntry(e: Entry): string {
  // An address and an instance name, once valid, hold nothing JSON escapes.
  let s = `{"ip":"${e.ip}","instance":"${e.instance}"`
  if (e.failures.length > 0) s += `,"failures":[${e.failures.join(',')}]`
  if (e.attempts !== 0) s += `,"attempts":${e.attempts}`
  s += `,"firstSeen":${e.firstSeen},"lastSeen":${e.lastSeen}`
  const lastOfUsers = e.users.length > 0 ? e.users[e.users.length - 1] : ''
  if (e.lastUser !== lastOfUsers) s += `,"lastUser":${stringJson(e.lastUser)}`
  if (e.blockedAt !== null) s += `,"blockedAt":${e.blockedAt}`
  if (e.blockedUntil !== null) s += `,"blockedUntil":${e.blockedUntil}`
  if (e.blocks !== 0) s += `,"blocks":${e.blocks}`
  if (e.lastBlockEnd !== null) s += `,"lastBlockEnd":${e.lastBlockEnd}`
  if (e.users.length > 0) s += `,"users":[${e.users.map(stringJson).join(',')}]`
  if (e.comment !== null) s += `,"comment":${stringJson(e.comment)}`
  // A rule name holds nothing JSON escapes (RULE_PATTERN).
  if (e.rule !== undefined) s += `,"rule":"${e.rule}"`
  if (e.tried !== undefined) s += `,"tried":"${e.tried}"`
  if (e.lastSuccess !== undefined) s += `,"lastSuccess":${e.lastSuccess}`
  return `${s}}`
}

/** About this many characters per piece of encodeChunks. */
const PIECE = 1 << 20

/**
 * The document as the file holds it, in pieces: the entries in their short
 * form, one a line (a diff or `grep` of the file finds one entry per line),
 * everything else as JSON.stringify writes it, all of it in ASCII (asciiJson).
 * Joined, the pieces are one JSON text ending in a newline.
 */
export function* encodeChunks(data: StoreData): Generator<string> {
  const {entries, ...rest} = data
  const head = JSON.stringify({schemaVersion: rest.schemaVersion})
  let piece = `${head.slice(0, -1)},"entries":[`
  for (let i = 0; i < entries.length; i++) {
    piece += `${i === 0 ? '\n' : ',\n'}${encodeEntry(entries[i] as Entry)}`
    if (piece.length >= PIECE) {
      yield piece
      piece = ''
    }
  }
  // Accounts under attack (accountAlert) and network windows (networkBlock) are written only when some are kept: without them the file is as before.
  const {schemaVersion: _version, accounts, networks, ...others} = rest
  const tail = JSON.stringify({
    ...others,
    ...(accounts === undefined || accounts.length === 0 ? {} : {accounts}),
    ...(networks === undefined || networks.length === 0 ? {} : {networks}),
  })
  yield `${piece}${entries.length > 0 ? '\n' : ''}]${tail === '{}' ? '' : `,${ascii(tail.slice(1, -1))}`}}\n`
}
