import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {activeBlocks, applyEvents, expireBlocks, neverBlockReason, pruneEntries, SKEW_MS, type SourcedEvent} from '../../src/core/decisions/decide.js'
import {validateConfig} from '../../src/core/config/config.js'
import {desiredState} from '../../src/core/run/desired.js'
import {cidrText, compareIps, NetworkList} from '../../src/core/net/ip.js'
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

// ---------------------------------------------------------------------------
// firewall.ipv6Prefix: IPv6 failures count against the network of that prefix

const v6 = {...settings, ipv6Prefix: 64}

test('ipv6Prefix 64: six failures from six addresses of one /64 make one network entry, blocked', () => {
  const data = emptyData()
  const events = [1, 2, 3, 4, 5, 6].map((h, i) => ev(`2001:db8:1:2::${h}`, T0 + i * MIN))
  const d = applyEvents(data, events, v6, none, T0 + 6 * MIN)
  assert.deepEqual(data.entries.map((e) => e.ip), ['2001:db8:1:2::/64'])
  assert.equal(data.entries[0]?.attempts, 6)
  assert.equal(d[5]?.action, 'blocked')
  assert.equal(d[5]?.key, '2001:db8:1:2::/64')
  assert.match(d[5]?.why ?? '', /^2001:db8:1:2::\/64: 6 failures within 10 min: blocked for 60 min/)
  assert.match(d[0]?.why ?? '', /^2001:db8:1:2::\/64: 1 of 6 failures/)
  assert.deepEqual(activeBlocks(data, none, T0 + 7 * MIN).get('master'), ['2001:db8:1:2::/64'])
  // A seventh address of the network is already blocked: the same entry.
  const later = applyEvents(data, [ev('2001:db8:1:2:aaaa::7', T0 + 8 * MIN)], v6, none, T0 + 8 * MIN)
  assert.equal(later[0]?.action, 'already-blocked')
  assert.equal(data.entries.length, 1)
})

test('ipv6Prefix 64: a network that would overlap a never-blocked one counts per address, as before', () => {
  const wl = new NetworkList(['2001:db8:1:2::99'])
  const data = emptyData()
  applyEvents(data, [1, 2, 3, 4, 5, 6].map((h, i) => ev(`2001:db8:1:2::${h}`, T0 + i * MIN)), v6, wl, T0)
  assert.deepEqual(data.entries.map((e) => e.ip), ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2::3', '2001:db8:1:2::4', '2001:db8:1:2::5', '2001:db8:1:2::6'])
  assert.ok(data.entries.every((e) => e.blockedAt === null))
  // ::1 is loopback: the network ::/64 is never counted as one.
  const lo = emptyData()
  applyEvents(lo, [ev('::2', T0), ev('::3', T0 + 1)], v6, none, T0)
  assert.deepEqual(lo.entries.map((e) => e.ip), ['::2', '::3'])
})

test('ipv6Prefix 64 leaves IPv4 alone; 128 or no prefix counts every IPv6 address on its own', () => {
  const data = emptyData()
  applyEvents(data, [ev('192.0.2.1', T0), ev('192.0.2.2', T0 + 1)], v6, none, T0)
  assert.deepEqual(data.entries.map((e) => e.ip), ['192.0.2.1', '192.0.2.2'])
  for (const s of [settings, {...settings, ipv6Prefix: 128}]) {
    const d = emptyData()
    applyEvents(d, [ev('2001:db8:1:2::1', T0), ev('2001:db8:1:2::2', T0 + 1)], s, none, T0)
    assert.deepEqual(d.entries.map((e) => e.ip), ['2001:db8:1:2::1', '2001:db8:1:2::2'])
  }
})

test('ipv6Prefix 64 with resetOnSuccess: a success from an address of the network clears the network\'s failures', () => {
  const data = emptyData()
  const s = {...v6, resetOnSuccess: true}
  applyEvents(data, [1, 2, 3].map((h, i) => ev(`2001:db8:1:2::${h}`, T0 + i * MIN)), s, none, T0)
  const d = applyEvents(data, [ev('2001:db8:1:2::9', T0 + 4 * MIN, {outcome: 'success', grammar: 'F3'})], s, none, T0)
  assert.equal(d[0]?.action, 'reset')
  assert.match(d[0]?.why ?? '', /^2001:db8:1:2::\/64: successful login, 3 earlier failure\(s\) forgotten/)
  assert.deepEqual(data.entries[0]?.failures, [])
})

test('neverBlockReason of a network entry considers the whole network', () => {
  const wl = new NetworkList([{cidr: '2001:db8:1:2::99', label: 'whitelisted (2001:db8:1:2::99/128)'}])
  assert.equal(neverBlockReason('2001:db8:1:2::/64', wl), 'whitelisted (2001:db8:1:2::99/128)')
  assert.equal(neverBlockReason('2001:db8:1:3::/64', wl), null)
  assert.equal(neverBlockReason('::/64', none), 'loopback')
  const data = emptyData()
  applyEvents(data, [1, 2, 3, 4, 5, 6].map((h, i) => ev(`2001:db8:1:2::${h}`, T0 + i * MIN)), v6, none, T0)
  // Whitelisted afterwards (configuration edited): the network entry is not blocked any more.
  assert.equal(activeBlocks(data, wl, T0).size, 0)
})

/**
 * The model: events in time order; an address is skipped when whitelisted;
 * otherwise it counts against its /P network, or itself when that network
 * holds a whitelisted address (or P is 128); each key has a list of
 * failures since its last block (those older than the period and SKEW_MS
 * dropped), and blocks when the last maxAttempts of them span at most the
 * period.
 */
test('property: entries and blocks per network equal a straightforward per-network model; never a network over a whitelisted address', () => {
  const nets = [0, 1, 2, 3]
  const hex = (n: number): string => n.toString(16)
  const addr = (net: number, host: number): string => (net === 0 ? `2001:db8::${hex(host)}` : `2001:db8:0:${hex(net)}::${hex(host)}`)
  const event = fc.record({
    kind: fc.constantFrom('v6', 'v6', 'v6', 'v4'),
    net: fc.constantFrom(...nets),
    host: fc.oneof(fc.integer({min: 1, max: 8}), fc.constant(0x99)),
    // Mostly bursts, sometimes long enough pauses for blocks to end.
    gap: fc.oneof({weight: 4, arbitrary: fc.integer({min: 1, max: 30_000})}, {weight: 1, arbitrary: fc.integer({min: 1, max: 40 * 60_000})}),
  })
  fc.assert(
    fc.property(
      fc.array(event, {minLength: 1, maxLength: 120, size: 'large'}),
      fc.constantFrom(56, 64, 128),
      fc.option(fc.constantFrom(...nets), {nil: undefined}),
      (evs, prefix, whitelistedNet) => {
        const s = {maxAttempts: 3, periodMinutes: 10, blockMinutes: 30, ipv6Prefix: prefix}
        const wlText = whitelistedNet === undefined ? [] : [addr(whitelistedNet, 0x99)]
        const wl = new NetworkList(wlText)
        const netOf = (net: number): string => (prefix === 56 ? '2001:db8::/56' : net === 0 ? '2001:db8::/64' : `2001:db8:0:${hex(net)}::/64`)
        const netHoldsWhitelisted = (net: number): boolean => whitelistedNet !== undefined && (prefix === 56 || net === whitelistedNet)
        // Model
        const model = new Map<string, {failures: number[]; until: number | null; blocks: number; attempts: number}>()
        let t = T0
        const events: SourcedEvent[] = []
        for (const e of evs) {
          t += e.gap
          const ip = e.kind === 'v4' ? `203.0.113.${e.host}` : addr(e.net, e.host)
          events.push(ev(ip, t))
          if (wlText.includes(ip)) continue
          const key = e.kind === 'v4' || prefix === 128 || netHoldsWhitelisted(e.net) ? ip : netOf(e.net)
          const m = model.get(key) ?? {failures: [], until: null, blocks: 0, attempts: 0}
          model.set(key, m)
          m.attempts++
          if (m.until !== null && m.until > t) continue
          // Only failures that can still be part of a window are kept (lines may be SKEW_MS out of order).
          m.failures = [...m.failures, t].filter((f) => f >= t - s.periodMinutes * MIN - SKEW_MS)
          const k = m.failures.length
          if (k >= s.maxAttempts && t - (m.failures[k - s.maxAttempts] ?? 0) <= s.periodMinutes * MIN) {
            m.until = t + s.blockMinutes * MIN
            m.blocks++
            m.failures = []
          }
        }
        const data = emptyData()
        applyEvents(data, events, s, wl, t)
        const got = new Map(data.entries.map((e) => [e.ip, {until: e.blockedUntil, blocks: e.blocks, attempts: e.attempts, n: e.failures.length}]))
        const want = new Map([...model].map(([k, m]) => [k, {until: m.until, blocks: m.blocks, attempts: m.attempts, n: m.failures.length}]))
        assert.deepEqual(got, want)
        assert.equal(data.entries.length, got.size, 'one entry per key')
        const blocked = [...model].filter(([, m]) => m.until !== null && m.until > t).map(([k]) => k).sort(compareIps)
        assert.deepEqual(activeBlocks(data, wl, t).get('master') ?? [], blocked)
        // The firewall blocks exactly those keys.
        const config = validateConfig({maxAttempts: 3, periodMinutes: 10, blockMinutes: 30, whitelist: wlText, firewall: {backend: 'none', ipv6Prefix: prefix}}, 'test', '/')
        const fw = desiredState(config, data, t).instances[0]
        assert.deepEqual([...(fw?.v4 ?? []), ...(fw?.v6 ?? [])], blocked.map(cidrText))
        for (const e of data.entries) {
          if (e.ip.includes('/')) assert.equal(wl.overlapping(e.ip), undefined, `${e.ip} overlaps the whitelist`)
        }
      },
    ),
    {seed: 4242, numRuns: 300},
  )
})
