/**
 * Deterministic generator of an rcguard database under a long brute-force
 * attack, for the scale bench (bench/scale.ts) and the scale tests.
 *
 *   node --import tsx bench/generate-db.ts OUT ENTRIES [VERSION] [SEED]
 *
 * It writes the file as the rcguard of that schema version would: version 3
 * (what rcguard 0.1 wrote: every user name whole, up to ten per entry) or
 * the current one (through the store's own encoder, so it is exactly what
 * rcguard writes). The file is written a piece at a time, so a database
 * larger than V8's longest string can be made.
 *
 * The mix, by entry, relative to `now`:
 * - 20%  blocked: the block started up to 50 min ago and lasts an hour
 *        (1 in 50 until deleted, with a comment, as `rcguard block` makes);
 *        1 to 3 blocks so far; no failures (a block clears them);
 * - 65%  watching: 1 to 5 failures within the last 8 minutes (inside a
 *        10-minute window), so they survive pruning;
 * - 15%  history: a block that ended 1 to 29 days ago (kept for escalation),
 *        last seen when it started, its stale failures and users still there
 *        as rcguard 0.1 left them.
 * Addresses: distinct, 90% IPv4, 10% IPv6. Every entry has 1 to 10 user
 * names tried (distinct); 9 in 10 are short mail addresses, 1 in 10 is
 * attacker text of 100 to 1024 characters (printable, with some non-ASCII
 * and control characters, which JSON escapes). The database's whitelist
 * has 100 networks that no entry falls into.
 */
import {closeSync, openSync, renameSync, writeSync} from 'node:fs'
import {resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {canonicalIp} from '../src/core/net/ip.js'
import {prng} from './generate-log.js'

/** Bump when the output changes, so cached databases are not reused. */
export const DB_GENERATOR_VERSION = 1

export const INSTANCES = ['master', 'webmail2']

export interface GenerateDbOptions {
  entries: number
  /** The time the database is "now" for (epoch ms); pass the same as RCGUARD_NOW. */
  now: number
  /** The schema version to write: 3 (the old format) or the current one. */
  version?: number
  seed?: number
}

export interface GeneratedDb {
  path: string
  bytes: number
  entries: number
  blocked: number
  watching: number
  history: number
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-_@\'"<>;=()%'
const ODD = ['é', 'ü', 'Ж', '中', '\u0007', '\u001b', '\u202e', '\t', '\\']

function attackerText(rand: () => number, length: number): string {
  let s = ''
  for (let i = 0; i < length; i++) s += rand() < 0.03 ? (ODD[Math.floor(rand() * ODD.length)] ?? '') : ALPHABET[Math.floor(rand() * ALPHABET.length)]
  return s
}

function userName(rand: () => number, i: number): string {
  if (rand() < 0.1) return attackerText(rand, 100 + Math.floor(rand() * 925))
  const names = ['admin', 'info', 'postmaster', 'test', 'office', 'support', 'sales', 'webmaster', 'root', 'user']
  return `${names[Math.floor(rand() * names.length)] ?? 'x'}${i % 1000}@example.org`
}

/** The i-th distinct address: IPv4 from 10.0.0.0/8 onwards, or IPv6 from 2001:db8::/32. */
function address(i: number, v6: boolean): string {
  // Written out, then in the canonical form rcguard keeps (2001:db8:1:0::1 is 2001:db8:1::1).
  if (v6) return canonicalIp(`2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`) ?? '2001:db8::1'
  const n = 0x0a000000 + i
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

export interface RawEntry {
  ip: string
  instance: string
  failures: number[]
  attempts: number
  firstSeen: number
  lastSeen: number
  lastUser: string
  blockedAt: number | null
  blockedUntil: number | null
  blocks: number
  lastBlockEnd: number | null
  users: string[]
  comment: string | null
}

/** The entries of the mix, one at a time. */
export function* generateEntries(n: number, now: number, seed = 1): Generator<RawEntry & {kind: 'blocked' | 'watching' | 'history'}> {
  const rand = prng(seed)
  const MIN = 60_000
  for (let i = 0; i < n; i++) {
    const r = rand()
    const kind = r < 0.2 ? 'blocked' : r < 0.85 ? 'watching' : 'history'
    const userCount = 1 + Math.floor(rand() * 10)
    const users = new Set<string>()
    for (let u = 0; u < userCount; u++) users.add(userName(rand, i + u))
    const list = [...users]
    const ip = address(i, rand() < 0.1)
    const instance = INSTANCES[i % INSTANCES.length] ?? 'master'
    const lastUser = list[list.length - 1] ?? ''
    if (kind === 'blocked') {
      const at = now - Math.floor(rand() * 50 * MIN)
      const forever = rand() < 0.02
      yield {
        kind,
        ip,
        instance,
        failures: [],
        attempts: 6 + Math.floor(rand() * 30),
        firstSeen: at - 5 * MIN,
        lastSeen: at,
        lastUser,
        blockedAt: at,
        blockedUntil: forever ? null : at + 60 * MIN,
        blocks: 1 + Math.floor(rand() * 3),
        lastBlockEnd: null,
        users: list,
        comment: forever ? `ticket ${i}` : null,
      }
    } else if (kind === 'watching') {
      const k = 1 + Math.floor(rand() * 5)
      const failures: number[] = []
      for (let f = 0; f < k; f++) failures.push(now - Math.floor(rand() * 8 * MIN))
      failures.sort((a, b) => a - b)
      yield {
        kind,
        ip,
        instance,
        failures,
        attempts: k,
        firstSeen: failures[0] ?? now,
        lastSeen: failures[k - 1] ?? now,
        lastUser,
        blockedAt: null,
        blockedUntil: null,
        blocks: 0,
        lastBlockEnd: null,
        users: list,
        comment: null,
      }
    } else {
      const end = now - (1 + Math.floor(rand() * 28)) * 86_400_000 - Math.floor(rand() * 86_400_000)
      const start = end - 60 * MIN
      yield {
        kind,
        ip,
        instance,
        failures: [start - 2 * MIN],
        attempts: 7 + Math.floor(rand() * 20),
        firstSeen: start - 10 * MIN,
        lastSeen: start,
        lastUser,
        blockedAt: null,
        blockedUntil: null,
        blocks: 1 + Math.floor(rand() * 4),
        lastBlockEnd: end,
        users: list,
        comment: null,
      }
    }
  }
}

/** The database's whitelist: 100 networks of 192.0.2.0/24 and 2001:db8:ffff::/48, outside every entry. */
export function generatedWhitelist(now: number): {cidr: string; comment: string | null; added: number}[] {
  const out = []
  for (let i = 0; i < 100; i++) {
    out.push({cidr: i % 2 === 0 ? `192.0.2.${i}/32` : `2001:db8:ffff:${i.toString(16)}::/64`, comment: i % 3 === 0 ? `office ${i}` : null, added: now - i * 86_400_000})
  }
  return out
}

/** Writes the database to `path` (through a temporary file, renamed into place). */
export async function generateDb(path: string, options: GenerateDbOptions): Promise<GeneratedDb> {
  const version = options.version ?? 3
  const tmp = `${path}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  let bytes = 0
  const out = (s: string): void => {
    bytes += writeSync(fd, s)
  }
  const counts = {blocked: 0, watching: 0, history: 0}
  const whitelist = generatedWhitelist(options.now)
  try {
    if (version === 3) {
      out('{"schemaVersion":3,"entries":[')
      let first = true
      let chunk = ''
      for (const {kind, ...e} of generateEntries(options.entries, options.now, options.seed)) {
        counts[kind]++
        chunk += (first ? '' : ',') + JSON.stringify(e)
        first = false
        if (chunk.length > 1 << 20) {
          out(chunk)
          chunk = ''
        }
      }
      out(chunk)
      out(`],"whitelist":${JSON.stringify(whitelist)},"positions":{},"ledger":{"twins":[],"accounts":[]}}\n`)
    } else {
      // The current format: the entries as the store keeps them (pruned, capped), written by its own encoder.
      const {SCHEMA_VERSION} = await import('../src/core/store/schema.js')
      if (version !== SCHEMA_VERSION) throw new Error(`generate-db: version ${version} is neither 3 nor the current ${SCHEMA_VERSION}`)
      const {encodeChunks} = await import('../src/core/store/codec.js')
      const {boundUsers, cutUser} = await import('../src/core/store/bounds.js')
      const entries = []
      for (const {kind, ...e} of generateEntries(options.entries, options.now, options.seed)) {
        counts[kind]++
        // As migration and pruning leave them: names cut and capped; history without its stale failures and names.
        if (kind === 'history') entries.push({...e, failures: [], users: [], lastUser: ''})
        else entries.push({...e, users: boundUsers(e.users), lastUser: cutUser(e.lastUser)})
      }
      for (const piece of encodeChunks({schemaVersion: SCHEMA_VERSION, entries, whitelist, positions: {}, ledger: {twins: [], accounts: []}})) out(piece)
    }
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  return {path, bytes, entries: options.entries, ...counts}
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [out, n, version, seed] = process.argv.slice(2)
  if (out === undefined || n === undefined) {
    console.error('usage: generate-db.ts OUT ENTRIES [VERSION] [SEED]')
    process.exit(2)
  }
  const r = await generateDb(resolve(out), {entries: Number(n), now: Date.now(), version: version === undefined ? 3 : Number(version), seed: seed === undefined ? 1 : Number(seed)})
  console.log(`${r.path}: ${r.entries} entries (${r.blocked} blocked, ${r.watching} watching, ${r.history} history), ${r.bytes} bytes`)
}
