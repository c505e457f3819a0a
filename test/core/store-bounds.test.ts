/**
 * A database that stays small (store/bounds.ts, store/keep-small.ts,
 * decisions/decide.ts pruneEntries): user names are kept cut and few; block
 * history is kept without its stale failures and names; the ceiling
 * (maxEntries) drops the oldest watching entries first, then history, and
 * never an entry whose block has not ended nor the admin's whitelist
 * (fast-check over generated stores).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {applyEvents, isBlockActive, pruneEntries, type SourcedEvent} from '../../src/core/decisions/decide.js'
import {NetworkList} from '../../src/core/net/ip.js'
import {emptyData, type Entry, type StoreData} from '../../src/core/store/schema.js'
import {keepSmall} from '../../src/core/store/keep-small.js'
import {ceilingWarning, cutUser, keepWithin, MAX_USER_LENGTH, MAX_USERS} from '../../src/core/store/bounds.js'
import {validateConfig} from '../../src/core/config/config.js'
import {envInt} from '../helpers/env.js'

const T0 = Date.UTC(2026, 10, 25, 13, 0, 0)
const MIN = 60_000
const DAY = 86_400_000
const settings = {maxAttempts: 6, periodMinutes: 10, blockMinutes: 60}
const RUNS = envInt('RCGUARD_PROPERTY_RUNS', 200)

let n = 0
function ev(ip: string, t: number, user: string): SourcedEvent {
  n++
  return {
    grammar: 'F2', outcome: 'failure', time: t, ip, user, session: `s${n}`, errorCode: 0,
    counted: true, reason: 'failed login', instance: 'master', file: 'f', lineNo: n,
  }
}

test('a user name is kept cut to 64 characters with an ellipsis, and only the 3 most recent distinct ones', () => {
  const data = emptyData()
  const long = `${'x'.repeat(1000)}@example.org`
  const users = [long, 'a', 'b', 'a', 'c', 'd']
  applyEvents(data, users.map((u, i) => ev('192.0.2.1', T0 + i * 1000, u)), settings, new NetworkList([]), T0)
  const [e] = data.entries
  assert.deepEqual(e?.users, ['a', 'c', 'd'])
  assert.equal(e?.lastUser, 'd')
  assert.equal(cutUser(long), `${'x'.repeat(MAX_USER_LENGTH - 1)}…`)
  assert.equal(cutUser(long).length, MAX_USER_LENGTH)
  // Alone, the long one is the last user, cut.
  const one = emptyData()
  applyEvents(one, [ev('192.0.2.2', T0, long)], settings, new NetworkList([]), T0)
  assert.deepEqual(one.entries[0]?.users, [cutUser(long)])
  assert.equal(one.entries[0]?.lastUser, cutUser(long))
  // Never through a surrogate pair.
  const emoji = `${'y'.repeat(MAX_USER_LENGTH - 2)}😀😀`
  assert.equal(cutUser(emoji), `${'y'.repeat(MAX_USER_LENGTH - 2)}…`)
})

function entry(ip: string, extra: Partial<Entry>): Entry {
  return {
    ip, instance: 'master', failures: [], attempts: 1, firstSeen: T0, lastSeen: T0, lastUser: 'u', blockedAt: null,
    blockedUntil: null, blocks: 0, lastBlockEnd: null, users: ['u'], comment: null, ...extra,
  }
}

test('block history is kept compactly: an expired block without recent failures keeps its counts, not its failures and names', () => {
  const data = emptyData()
  const now = T0 + 5 * DAY
  data.entries.push(
    entry('192.0.2.1', {blocks: 2, attempts: 12, lastBlockEnd: T0 + DAY, lastSeen: T0, failures: [T0 - MIN, T0], users: ['a', 'b'], lastUser: 'b', comment: 'ticket 7'}),
    entry('192.0.2.2', {lastSeen: now - MIN, failures: [now - MIN], users: ['c'], lastUser: 'c'}),
    entry('192.0.2.3', {lastSeen: T0, failures: [T0]}),
  )
  pruneEntries(data, settings, now)
  assert.deepEqual(
    data.entries.map((e) => e.ip),
    ['192.0.2.1', '192.0.2.2'],
    'the watching entry whose failures left the window is gone',
  )
  assert.deepEqual(data.entries[0], entry('192.0.2.1', {blocks: 2, attempts: 12, lastBlockEnd: T0 + DAY, lastSeen: T0, failures: [], users: [], lastUser: '', comment: 'ticket 7'}))
  assert.deepEqual(data.entries[1]?.users, ['c'], 'a watching entry keeps its names')
})

/** Stores of every kind of entry, at times around `now`. */
const NOW = T0 + 40 * DAY
const anyEntry = fc
  .record({
    kind: fc.constantFrom('blocked', 'forever', 'ended-unexpired', 'watching', 'history', 'stale'),
    seen: fc.integer({min: 0, max: 45 * DAY}),
    blocks: fc.integer({min: 1, max: 5}),
  })
  .map(({kind, seen, blocks}) => {
    const lastSeen = NOW - seen
    switch (kind) {
      case 'blocked':
        return {lastSeen, blockedAt: lastSeen, blockedUntil: NOW + 1 + (seen % 5000), blocks}
      case 'forever':
        return {lastSeen, blockedAt: lastSeen, blockedUntil: null, blocks, comment: 'by hand'}
      case 'ended-unexpired':
        return {lastSeen, blockedAt: lastSeen, blockedUntil: NOW - 1, blocks}
      case 'watching':
        return {lastSeen: NOW - (seen % (9 * MIN)), failures: [NOW - (seen % (9 * MIN))], blocks: 0}
      case 'history':
        return {lastSeen, lastBlockEnd: NOW - (seen % (29 * DAY)), blocks}
      default:
        return {lastSeen, failures: [lastSeen], blocks: 0}
    }
  })

const stores = fc
  .record({
    entries: fc.array(anyEntry, {maxLength: 60}),
    whitelist: fc.array(fc.integer({min: 0, max: 255}), {maxLength: 5}),
  })
  .map(({entries, whitelist}): StoreData => {
    const data = emptyData()
    data.entries = entries.map((e, i) => entry(`198.51.${i >> 8}.${i & 255}`, e))
    data.whitelist = [...new Set(whitelist)].map((b) => ({cidr: `203.0.113.${b}/32`, comment: null, added: T0}))
    return data
  })

test('property: pruning and the ceiling keep every block not yet ended, with its times, and the whole whitelist; at most maxEntries otherwise', () => {
  fc.assert(
    fc.property(stores, fc.integer({min: 0, max: 70}), (data, maxEntries) => {
      const blocks = data.entries.filter((e) => e.blockedAt !== null).map((e) => ({...e}))
      const inForce = data.entries.filter((e) => isBlockActive(e, NOW)).length
      const whitelist = structuredClone(data.whitelist)
      const {warnings} = keepSmall(data, {...settings, escalation: {factor: 2, maxMinutes: 10080, forgetDays: 30}, maxEntries}, NOW)
      for (const b of blocks) {
        const kept = data.entries.find((e) => e.ip === b.ip && e.instance === b.instance)
        assert.ok(kept !== undefined, `the block of ${b.ip} is kept`)
        assert.deepEqual([kept.blockedAt, kept.blockedUntil, kept.blocks], [b.blockedAt, b.blockedUntil, b.blocks])
      }
      assert.ok(data.entries.filter((e) => isBlockActive(e, NOW)).length === inForce)
      assert.deepEqual(data.whitelist, whitelist)
      assert.ok(data.entries.length <= Math.max(maxEntries, blocks.length), `${data.entries.length} entries for a ceiling of ${maxEntries}`)
      assert.ok(warnings.length <= 1, 'one line at most')
    }),
    {seed: 12, numRuns: RUNS},
  )
})

test('property: the ceiling drops watching entries oldest first, and history only once no watching entry is left', () => {
  fc.assert(
    fc.property(stores, fc.integer({min: 0, max: 70}), (data, maxEntries) => {
      const before = [...data.entries]
      const r = keepWithin(data, maxEntries)
      const kept = new Set(data.entries)
      const dropped = before.filter((e) => !kept.has(e))
      assert.equal(dropped.length, r.watching + r.history)
      const withBlock = before.filter((e) => e.blockedAt !== null).length
      assert.equal(data.entries.length, before.length <= maxEntries ? before.length : Math.max(maxEntries, withBlock))
      const watchingKept = data.entries.filter((e) => e.blockedAt === null && e.blocks === 0)
      for (const d of dropped) {
        assert.equal(d.blockedAt, null, 'no entry with a block is dropped')
        if (d.blocks === 0) for (const w of watchingKept) assert.ok(w.lastSeen >= d.lastSeen, 'an older watching entry was kept')
        else assert.equal(watchingKept.length, 0, 'history went while watching entries were left')
      }
      // The order of what is left is the database's.
      assert.deepEqual(data.entries, before.filter((e) => kept.has(e)))
    }),
    {seed: 13, numRuns: RUNS},
  )
})

test('the ceiling warns in one line naming what went and the key to raise', () => {
  assert.equal(ceilingWarning({watching: 0, history: 0, over: 0}, 1000), null)
  assert.equal(
    ceilingWarning({watching: 1500, history: 2, over: 0}, 200000),
    'the database reached maxEntries (200000): dropped 1500 watching entries and 2 entries of expired blocks, oldest first; no block was lost; raise maxEntries in the configuration to keep more',
  )
  assert.equal(
    ceilingWarning({watching: 0, history: 0, over: 5}, 1000),
    'the database reached maxEntries (1000): nothing could be dropped; no block was lost; 5 more blocks in force than it allows are kept; raise maxEntries in the configuration to keep more',
  )
})

test('maxEntries: 200000 by default, an integer of at least 1000', () => {
  assert.equal(validateConfig({}, 'test', '/').maxEntries, 200_000)
  assert.equal(validateConfig({maxEntries: 5000}, 'test', '/').maxEntries, 5000)
  assert.throws(() => validateConfig({maxEntries: 999}, 'test', '/'), /maxEntries: Too small: expected number to be >=1000/)
  assert.throws(() => validateConfig({maxEntries: 1500.5}, 'test', '/'), /maxEntries: /)
  assert.ok(MAX_USERS === 3)
})
