import {test} from 'node:test'
import assert from 'node:assert/strict'
import {activeBlocks, applyEvents, expireBlocks, pruneEntries, type SourcedEvent} from '../../src/core/decisions/decide.js'
import {NetworkList} from '../../src/core/net/ip.js'
import {emptyData} from '../../src/core/store/schema.js'

const T0 = Date.UTC(2026, 10, 25, 13, 0, 0)
const MIN = 60_000
const settings = {maxAttempts: 6, periodMinutes: 10, blockMinutes: 60}
const none = new NetworkList([])

let n = 0
function ev(ip: string, t: number, extra: Partial<SourcedEvent> = {}): SourcedEvent {
  n++
  return {
    grammar: 'F2', outcome: 'failure', time: t, ip, user: 'u', session: `s${n}`, errorCode: 0,
    counted: true, reason: 'failed login', instance: 'master', file: 'f', lineNo: n, ...extra,
  }
}

test('five failures within the period watch; the sixth blocks for blockMinutes from that failure', () => {
  const data = emptyData()
  const events = [0, 1, 2, 3, 4].map((i) => ev('192.0.2.1', T0 + i * MIN))
  let d = applyEvents(data, events, settings, none, T0 + 5 * MIN)
  assert.equal(d.filter((x) => x.action === 'blocked').length, 0)
  assert.equal(data.entries[0]?.failures.length, 5)
  d = applyEvents(data, [ev('192.0.2.1', T0 + 9 * MIN)], settings, none, T0 + 9 * MIN)
  assert.equal(d[0]?.action, 'blocked')
  assert.equal(data.entries[0]?.blockedAt, T0 + 9 * MIN)
  assert.equal(data.entries[0]?.blockedUntil, T0 + 69 * MIN)
  assert.deepEqual(activeBlocks(data, none, T0 + 10 * MIN).get('master'), ['192.0.2.1'])
})

test('the window is exact and inclusive: six failures spanning exactly the period block, one ms more does not', () => {
  const a = emptyData()
  applyEvents(a, [0, 2, 4, 6, 8, 10].map((m) => ev('192.0.2.2', T0 + m * MIN)), settings, none, T0)
  assert.notEqual(a.entries[0]?.blockedAt, null)
  const b = emptyData()
  applyEvents(b, [0, 2, 4, 6, 8].map((m) => ev('192.0.2.3', T0 + m * MIN)).concat(ev('192.0.2.3', T0 + 10 * MIN + 1)), settings, none, T0)
  assert.equal(b.entries[0]?.blockedAt, null)
})

test('a slow trickle never blocks, however long it goes on', () => {
  const data = emptyData()
  applyEvents(data, Array.from({length: 50}, (_, i) => ev('192.0.2.4', T0 + i * 2.5 * MIN)), settings, none, T0)
  assert.equal(data.entries[0]?.blockedAt, null)
  assert.ok((data.entries[0]?.failures.length ?? 0) <= 6)
})

test('out-of-order lines count by their own timestamps', () => {
  const data = emptyData()
  applyEvents(data, [ev('192.0.2.5', T0 + 9 * MIN), ev('192.0.2.5', T0 + 8 * MIN)], settings, none, T0)
  applyEvents(data, [1, 2, 3, 4].map((m) => ev('192.0.2.5', T0 + m * MIN)), settings, none, T0 + 10 * MIN)
  assert.equal(data.entries[0]?.blockedAt, T0 + 9 * MIN)
})

test('loopback and whitelisted addresses are never counted or blocked', () => {
  const data = emptyData()
  const wl = new NetworkList(['198.51.100.0/24'])
  const events = [...Array(10).keys()].flatMap((i) => [ev('127.0.0.1', T0 + i), ev('::1', T0 + i), ev('198.51.100.7', T0 + i)])
  const d = applyEvents(data, events, settings, wl, T0)
  assert.equal(data.entries.length, 0)
  assert.ok(d.every((x) => x.action === 'never-block'))
})

test('events that do not count are ignored, and one attempt in both logs counts once', () => {
  const data = emptyData()
  const d = applyEvents(data, [ev('192.0.2.6', T0, {counted: false, reason: 'storage error'})], settings, none, T0)
  assert.equal(d[0]?.action, 'ignored')
  assert.equal(data.entries.length, 0)
  const pair = [ev('192.0.2.6', T0, {grammar: 'F1', session: 'abc'}), ev('192.0.2.6', T0 + 1000, {grammar: 'F2', session: 'abc'})]
  const d2 = applyEvents(data, pair, settings, none, T0)
  assert.deepEqual(d2.map((x) => x.action), ['counted', 'duplicate'])
  assert.equal(data.entries[0]?.attempts, 1)
})

test('blockMinutes 0 blocks until deleted; expiry ends timed blocks only', () => {
  const data = emptyData()
  applyEvents(data, [0, 1, 2, 3, 4, 5].map((m) => ev('192.0.2.7', T0 + m * MIN)), {...settings, blockMinutes: 0}, none, T0)
  applyEvents(data, [0, 1, 2, 3, 4, 5].map((m) => ev('192.0.2.8', T0 + m * MIN)), settings, none, T0)
  assert.equal(expireBlocks(data, T0 + 64 * MIN).length, 0)
  const expired = expireBlocks(data, T0 + 65 * MIN)
  assert.deepEqual(expired.map((e) => e.ip), ['192.0.2.8'])
  assert.deepEqual(activeBlocks(data, none, T0 + 1000 * MIN).get('master'), ['192.0.2.7'])
})

test('after a block ends a fresh burst is needed; the block history stays', () => {
  const data = emptyData()
  applyEvents(data, [0, 1, 2, 3, 4, 5].map((m) => ev('192.0.2.9', T0 + m * MIN)), settings, none, T0)
  expireBlocks(data, T0 + 70 * MIN)
  applyEvents(data, [ev('192.0.2.9', T0 + 71 * MIN)], settings, none, T0 + 71 * MIN)
  assert.equal(data.entries[0]?.blockedAt, null)
  assert.equal(data.entries[0]?.blocks, 1)
  assert.equal(data.entries[0]?.failures.length, 1)
})

test('prune drops entries that can no longer lead to a block, keeps blocked ones and history', () => {
  const data = emptyData()
  applyEvents(data, [ev('192.0.2.10', T0), ...[0, 1, 2, 3, 4, 5].map((m) => ev('192.0.2.11', T0 + m * MIN))], settings, none, T0)
  assert.equal(pruneEntries(data, settings, T0 + 5 * MIN), 0)
  assert.equal(pruneEntries(data, settings, T0 + 30 * MIN), 1)
  assert.deepEqual(data.entries.map((e) => e.ip), ['192.0.2.11'])
})

test('instances count separately', () => {
  const data = emptyData()
  const a = [0, 1, 2].map((m) => ev('192.0.2.12', T0 + m * MIN, {instance: 'a'}))
  const b = [3, 4, 5].map((m) => ev('192.0.2.12', T0 + m * MIN, {instance: 'b'}))
  applyEvents(data, [...a, ...b], settings, none, T0)
  assert.equal(data.entries.length, 2)
  assert.ok(data.entries.every((e) => e.blockedAt === null))
})
