/**
 * firewall.ipv6Prefix: the shared key of counting and blocking, the merge of
 * older per-address IPv6 entries into their network's entry, and a changed
 * prefix, which must leave the firewall equal to the database.
 *
 * networkBlock (NetworkWatch): a swarm of many addresses of one network is a
 * hit once, at the failure that completes the window; never a network that
 * overlaps anything never blocked; the same across runs; bounded. The
 * properties are in networks.property.test.ts.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {validateConfig} from '../../src/core/config/config.js'
import {activeBlocks, newEntry} from '../../src/core/decisions/decide.js'
import {mergeIntoNetworks, NetworkWatch, neverBlockedIn, type NetworkHit} from '../../src/core/decisions/networks.js'
import {desiredState} from '../../src/core/run/desired.js'
import {blockKey, cidrContains, compareIps, NetworkList, networkOf, parseCidr, withoutNested, type Cidr} from '../../src/core/net/ip.js'
import {MAX_NETWORKS, MAX_WINDOW_ADDRESSES} from '../../src/core/store/bounds.js'
import {decodeEntries, encodeChunks, validateData} from '../../src/core/store/codec.js'
import {diagnose} from '../../src/core/store/diagnose.js'
import {dataSchema, emptyData, networkRecordSchema, type Entry, type NetworkRecord} from '../../src/core/store/schema.js'

const T0 = Date.UTC(2026, 10, 25, 13, 0, 0)
const MIN = 60_000
const none = new NetworkList([])

function config(ipv6Prefix: number, whitelist: string[] = ['127.0.0.0/8', '::1']) {
  return validateConfig({whitelist, firewall: {backend: 'none', ipv6Prefix}}, 'test', '/')
}

function entry(ip: string, extra: Partial<Entry> = {}): Entry {
  return {...newEntry(ip, 'master', T0), ...extra}
}

const v6 = (c: ReturnType<typeof config>, data: ReturnType<typeof emptyData>, now = T0) => desiredState(c, data, now).instances[0]?.v6

test('blockKey: an IPv6 address or narrower network becomes its network, unless that overlaps a never-blocked one', () => {
  assert.equal(blockKey('2001:db8:1:2::5', 64, none), '2001:db8:1:2::/64')
  assert.equal(blockKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 48, none), '2001:db8:1::/48')
  assert.equal(blockKey('2001:db8:1:2::5', 128, none), '2001:db8:1:2::5')
  assert.equal(blockKey('192.0.2.7', 64, none), '192.0.2.7')
  assert.equal(blockKey('2001:db8:1:2::/64', 64, none), '2001:db8:1:2::/64')
  assert.equal(blockKey('2001:db8:1:2::/64', 48, none), '2001:db8:1::/48')
  // A network entry is never split when the prefix grows.
  assert.equal(blockKey('2001:db8:1:2::/64', 128, none), '2001:db8:1:2::/64')
  const wl = new NetworkList(['2001:db8:1:2::99'])
  assert.equal(blockKey('2001:db8:1:2::5', 64, wl), '2001:db8:1:2::5')
  assert.equal(blockKey('2001:db8:1:3::5', 64, wl), '2001:db8:1:3::/64')
  assert.equal(blockKey('2001:db8:1:3::/64', 48, wl), '2001:db8:1:3::/64')
  assert.equal(blockKey('::5', 64, none), '::5', '::/64 holds ::1')
})

test('older per-address IPv6 entries are merged into their network: attempts, block and block count add up', () => {
  const data = emptyData()
  data.entries.push(
    entry('2001:db8:1:2::1', {attempts: 6, blocks: 2, blockedAt: T0, blockedUntil: T0 + 60 * MIN, lastSeen: T0, users: ['a', 'b'], lastUser: 'b', comment: 'ticket 1'}),
    entry('192.0.2.1', {attempts: 2, failures: [T0, T0 + 1]}),
    entry('2001:db8:1:2::2', {attempts: 3, failures: [T0 + 1, T0 + 2, T0 + 3], firstSeen: T0 - MIN, lastSeen: T0 + 3, users: ['c', 'a'], lastUser: 'a'}),
    entry('2001:db8:1:2::3', {attempts: 6, blocks: 1, blockedAt: T0 + MIN, blockedUntil: T0 + 120 * MIN, lastSeen: T0 + MIN, users: ['d'], lastUser: 'd'}),
    entry('2001:db8:1:2::1', {instance: 'other', attempts: 1}),
    entry('2001:db8:9::1', {attempts: 1}),
  )
  const never = new NetworkList(['2001:db8:9::99'])
  const merged = mergeIntoNetworks(data, (ip) => blockKey(ip, 64, never))
  assert.equal(merged, 2)
  assert.deepEqual(
    data.entries.map((e) => [e.ip, e.instance]),
    [
      ['2001:db8:1:2::/64', 'master'],
      ['192.0.2.1', 'master'],
      ['2001:db8:1:2::/64', 'other'],
      ['2001:db8:9::1', 'master'],
    ],
  )
  const net = data.entries[0]
  assert.equal(net?.attempts, 15)
  assert.equal(net?.blocks, 3)
  assert.equal(net?.blockedAt, T0)
  assert.equal(net?.blockedUntil, T0 + 120 * MIN, 'blocked as long as the longest of them')
  assert.deepEqual(net?.failures, [], 'blocked: no window open')
  assert.equal(net?.firstSeen, T0 - MIN)
  assert.equal(net?.lastSeen, T0 + MIN)
  assert.equal(net?.lastUser, 'd')
  // The most recent distinct names, at most 3 (store/bounds.ts MAX_USERS).
  assert.deepEqual(net?.users, ['c', 'a', 'd'])
  assert.equal(net?.comment, 'ticket 1')
  // Idempotent: a second read changes nothing.
  assert.equal(mergeIntoNetworks(data, (ip) => blockKey(ip, 64, never)), 0)
})

test('a merged network entry: until deleted wins; unblocked ones keep their failures', () => {
  const data = emptyData()
  data.entries.push(entry('2001:db8::1', {blockedAt: T0, blockedUntil: null, blocks: 1}), entry('2001:db8::2', {blockedAt: T0, blockedUntil: T0 + MIN, blocks: 1}))
  mergeIntoNetworks(data, (ip) => blockKey(ip, 64, none))
  assert.equal(data.entries[0]?.blockedUntil, null)
  const watch = emptyData()
  watch.entries.push(entry('2001:db8::1', {failures: [T0 + 2]}), entry('2001:db8::2', {failures: [T0 + 1, T0 + 3]}))
  mergeIntoNetworks(watch, (ip) => blockKey(ip, 64, none))
  assert.deepEqual(watch.entries[0]?.failures, [T0 + 1, T0 + 2, T0 + 3])
  assert.equal(watch.entries[0]?.blockedAt, null)
})

test('desiredState widens an unmerged per-address entry as before and blocks a network entry whole', () => {
  const data = emptyData()
  data.entries.push(
    entry('2001:db8:1:2::1', {blockedAt: T0, blockedUntil: null}),
    entry('2001:db8:1:3::/64', {blockedAt: T0, blockedUntil: null}),
    entry('2001:db8:1:4::1', {blockedAt: T0, blockedUntil: null}),
  )
  assert.deepEqual(v6(config(64), data), ['2001:db8:1:2::/64', '2001:db8:1:3::/64', '2001:db8:1:4::/64'])
  // A whitelisted address inside: that network is not blocked, and the per-address entry is blocked alone.
  assert.deepEqual(v6(config(64, ['2001:db8:1:2::99', '2001:db8:1:3::99']), data), ['2001:db8:1:2::1/128', '2001:db8:1:4::/64'])
})

test('changing ipv6Prefix leaves no orphaned block: the firewall still equals the database', () => {
  const data = emptyData()
  data.entries.push(entry('2001:db8:1:2::/64', {blockedAt: T0, blockedUntil: T0 + 60 * MIN, blocks: 1}), entry('2001:db8:1:3::/64', {blockedAt: T0, blockedUntil: T0 + 90 * MIN, blocks: 1}))
  // 64 -> 128: the network entries stay networks, blocked whole until they end or are deleted.
  assert.deepEqual(v6(config(128), data), ['2001:db8:1:2::/64', '2001:db8:1:3::/64'])
  assert.deepEqual(activeBlocks(data, none, T0).get('master'), ['2001:db8:1:2::/64', '2001:db8:1:3::/64'])
  // A per-address entry inside a blocked network (a block by hand under 128) adds nothing the network does not block.
  data.entries.push(entry('2001:db8:1:2::5', {blockedAt: T0, blockedUntil: null}))
  assert.deepEqual(v6(config(128), data), ['2001:db8:1:2::/64', '2001:db8:1:3::/64'])
  assert.deepEqual(v6(config(128), data, T0 + 61 * MIN), ['2001:db8:1:2::5/128', '2001:db8:1:3::/64'])
  // 64 -> 48: one entry for the /48, blocked as long as the longest.
  const c48 = config(48)
  mergeIntoNetworks(data, (ip) => blockKey(ip, 48, new NetworkList(c48.whitelist)))
  assert.deepEqual(data.entries.map((e) => e.ip), ['2001:db8:1::/48'])
  assert.equal(data.entries[0]?.blockedUntil, null)
  assert.deepEqual(v6(c48, data), ['2001:db8:1::/48'])
})

test('withoutNested drops networks inside another; compareIps sorts networks by address, wider first', () => {
  const sorted = ['2001:db8:1:2::5/128', '2001:db8:1::/48', '2001:db8:1:2::/64', '2001:db8:2::/64', '2001:db8:1:2::/64'].sort(compareIps)
  assert.deepEqual(sorted, ['2001:db8:1::/48', '2001:db8:1:2::/64', '2001:db8:1:2::/64', '2001:db8:1:2::5/128', '2001:db8:2::/64'])
  assert.deepEqual(withoutNested(sorted), ['2001:db8:1::/48', '2001:db8:2::/64'])
  assert.deepEqual(['2001:db8::1', '192.0.2.1', '2001:db8::/64'].sort(compareIps), ['192.0.2.1', '2001:db8::/64', '2001:db8::1'])
})

// ---- networkBlock: NetworkWatch ----

const SEC = 1000
const swarmSettings = {ipv4Prefix: 24, ipv6Prefix: 48, minAddresses: 10, periodMinutes: 60}

interface Failure {
  ip: string
  time: number
}

/**
 * Feeds failures as the decider would: a hit blocks the network (its later
 * failures count against its entry, not here) and clears its window.
 */
function drive(watch: NetworkWatch, failures: readonly Failure[], instance = 'master'): NetworkHit[] {
  const hits: NetworkHit[] = []
  const blocked: Cidr[] = []
  for (const f of failures) {
    if (blocked.some((b) => cidrContains(b, f.ip.split('/')[0] ?? ''))) continue
    const hit = watch.add(instance, f.ip, f.time)
    if (hit === null) continue
    hits.push(hit)
    blocked.push(parseCidr(hit.network) as Cidr)
    watch.clear(instance, hit.network)
  }
  return hits
}

function watchOf(settings = swarmSettings, records: NetworkRecord[] = [], never: (n: string) => string | null = () => null): NetworkWatch {
  return new NetworkWatch(records, settings, never)
}

/** 50 addresses of 198.51.100.0/24, three rounds, a failure every 5 seconds. */
function swarm(base = '198.51.100', count = 50, rounds = 3, stepMs = 5 * SEC, from = T0): Failure[] {
  const out: Failure[] = []
  for (let r = 0; r < rounds; r++) for (let i = 0; i < count; i++) out.push({ip: `${base}.${i + 1}`, time: from + (r * count + i) * stepMs})
  return out
}

test('networkBlock: a /24 swarm of 50 addresses x 3 failures is one hit, at the failure of its 10th address', () => {
  const hits = drive(watchOf(), swarm())
  assert.deepEqual(hits, [{instance: 'master', network: '198.51.100.0/24', addresses: 10, first: T0, at: T0 + 9 * 5 * SEC}])
})

test('networkBlock: without the block, a cleared window needs a fresh swarm; uncleared, the window stays a hit', () => {
  const watch = watchOf()
  const failures = swarm()
  const hits: number[] = []
  for (const f of failures) {
    const hit = watch.add('master', f.ip, f.time)
    if (hit !== null) {
      hits.push(failures.indexOf(f))
      watch.clear('master', hit.network)
    }
  }
  // Cleared at failures 9, 19, ...: each hit needs 10 addresses that failed after the last.
  assert.deepEqual(hits, [9, 19, 29, 39, 49, 59, 69, 79, 89, 99, 109, 119, 129, 139, 149])
  const kept = watchOf()
  const again = swarm().map((f) => kept.add('master', f.ip, f.time))
  assert.equal(again.findIndex((h) => h !== null), 9)
  assert.ok(again.slice(9).every((h) => h !== null && h.addresses >= 10), 'the caller that does not clear is told again')
})

test('networkBlock: 9 addresses of a /24 with minAddresses 10 never hit, however often they fail', () => {
  assert.deepEqual(drive(watchOf(), swarm('198.51.100', 9, 40)), [])
})

test('networkBlock: two /24s are counted apart (18 addresses of a /23 are 9 and 9)', () => {
  const a = swarm('198.51.100', 9, 2)
  const b = swarm('198.51.101', 9, 2, 5 * SEC, T0 + 2500)
  const mixed = [...a, ...b].sort((x, y) => x.time - y.time)
  assert.deepEqual(drive(watchOf(), mixed), [])
  const more = [...mixed, {ip: '198.51.101.200', time: T0 + 200 * SEC}]
  assert.deepEqual(drive(watchOf(), more), [{instance: 'master', network: '198.51.101.0/24', addresses: 10, first: T0 + 2500, at: T0 + 200 * SEC}])
  // The same addresses under another instance are another count.
  const w = watchOf()
  assert.deepEqual(drive(w, mixed.slice(0, 9), 'other'), [])
  assert.equal(drive(w, [{ip: '198.51.100.50', time: T0 + 300 * SEC}], 'master').length, 0)
})

test('networkBlock: an IPv6 /48 swarm over many /64s, as addresses and as /64 entries (firewall.ipv6Prefix 64)', () => {
  const addresses = Array.from({length: 12}, (_, i) => ({ip: `2001:db8:1:${(i * 0x1111).toString(16)}::${i + 1}`, time: T0 + i * 30 * SEC}))
  assert.deepEqual(drive(watchOf(), addresses), [{instance: 'master', network: '2001:db8:1::/48', addresses: 10, first: T0, at: T0 + 9 * 30 * SEC}])
  const keys = addresses.map((f) => ({ip: networkOf(f.ip, 64).text, time: f.time}))
  assert.deepEqual(drive(watchOf(), keys), [{instance: 'master', network: '2001:db8:1::/48', addresses: 10, first: T0, at: T0 + 9 * 30 * SEC}])
  // Addresses of one /64 are one host's: one address, as its /64 entry is.
  const oneNet = Array.from({length: 10}, (_, i) => ({ip: `2001:db8:2:5::${i + 1}`, time: T0 + i}))
  assert.deepEqual(drive(watchOf(), oneNet), [])
  assert.deepEqual(drive(watchOf(), oneNet.map((f) => ({ip: '2001:db8:2:5::/64', time: f.time}))), [])
  // A key wider than ipv6Prefix is no address of one /48: ignored, never a network it does not fit in.
  const w = watchOf({...swarmSettings, minAddresses: 1})
  assert.equal(w.add('master', '2001:db8::/32', T0), null)
  assert.equal(w.add('master', '2001:db8:3::/48', T0)?.network, '2001:db8:3::/48')
  // IPv4 network text likewise, against ipv4Prefix.
  assert.equal(w.add('master', '198.51.0.0/16', T0), null)
  assert.equal(w.add('master', '198.51.7.128/25', T0)?.network, '198.51.7.0/24')
  // With ipv6Prefix 64, a /64 entry is its own network: one address, never minAddresses of them.
  const w64 = watchOf({...swarmSettings, ipv6Prefix: 64, minAddresses: 2})
  assert.equal(w64.add('master', '2001:db8:1:2::/64', T0), null)
  assert.equal(w64.add('master', '2001:db8:1:2::/64', T0 + 1), null)
  assert.equal(w64.add('master', '2001:db8:1:2::7', T0 + 2)?.network, '2001:db8:1:2::/64')
})

test('networkBlock: a swarm longer than the period, no window of which holds minAddresses, never hits; the window is inclusive', () => {
  const settings = {...swarmSettings, periodMinutes: 9}
  // 61 s apart, 10 addresses span 549 s > 540 s: 9 per window at most, over 100 addresses and 100 minutes.
  const sparse = Array.from({length: 100}, (_, i) => ({ip: `198.51.100.${i + 1}`, time: T0 + i * 61 * SEC}))
  assert.deepEqual(drive(watchOf(settings), sparse), [])
  // 60 s apart: the 10th address is exactly periodMinutes after the first, and counts.
  const dense = Array.from({length: 100}, (_, i) => ({ip: `198.51.100.${i + 1}`, time: T0 + i * 60 * SEC}))
  assert.deepEqual(drive(watchOf(settings), dense), [{instance: 'master', network: '198.51.100.0/24', addresses: 10, first: T0, at: T0 + 9 * 60 * SEC}])
})

test('networkBlock: a quiet period ends an episode; a line older than the window counts for nothing', () => {
  const w = watchOf({...swarmSettings, minAddresses: 3, periodMinutes: 10})
  assert.equal(w.add('master', '198.51.100.1', T0), null)
  assert.equal(w.add('master', '198.51.100.2', T0 + MIN), null)
  // 11 minutes of quiet: a new episode, its own first failure.
  assert.equal(w.add('master', '198.51.100.3', T0 + 12 * MIN), null)
  assert.equal(w.add('master', '198.51.100.4', T0 + 13 * MIN), null)
  // Out of order: 198.51.100.5 failed 20 minutes before the newest failure, outside any window of it.
  assert.equal(w.add('master', '198.51.100.5', T0 - 7 * MIN), null)
  // Out of order but within the period: counts.
  assert.deepEqual(w.add('master', '198.51.100.6', T0 + 5 * MIN), {instance: 'master', network: '198.51.100.0/24', addresses: 3, first: T0 - 7 * MIN, at: T0 + 5 * MIN})
})

test('networkBlock: never a network overlapping what is never blocked; refused() names it once; never is asked once per network', () => {
  const calls: string[] = []
  const list = new NetworkList([{cidr: '198.51.100.7', label: 'whitelisted (198.51.100.7/32)'}, {cidr: '2001:db8:5:1::/64', label: 'a trusted proxy (2001:db8:5:1::/64)'}])
  const check = neverBlockedIn(list)
  const never = (n: string) => {
    calls.push(n)
    return check(n)
  }
  const w = watchOf(swarmSettings, [], never)
  // The whitelisted address itself never reaches the watch (the decider passes it over); its neighbours do.
  const failures = swarm().filter((f) => f.ip !== '198.51.100.7')
  assert.deepEqual(drive(w, failures), [])
  assert.deepEqual(w.refused(), [{instance: 'master', network: '198.51.100.0/24', why: 'it holds what is never blocked: whitelisted (198.51.100.7/32)'}])
  assert.deepEqual(calls, ['198.51.100.0/24'])
  // A neighbouring /24 is blocked as usual.
  assert.equal(drive(w, swarm('198.51.101')).length, 1)
  assert.deepEqual(calls, ['198.51.100.0/24', '198.51.101.0/24'])
  // A /48 holding a trusted proxy's /64, and one holding loopback (::1 is in ::/48).
  assert.deepEqual(drive(w, Array.from({length: 12}, (_, i) => ({ip: `2001:db8:5:${i + 2}::1`, time: T0 + i}))), [])
  assert.deepEqual(drive(w, Array.from({length: 12}, (_, i) => ({ip: `0:0:0:${(i + 2).toString(16)}::1`, time: T0 + i}))), [])
  assert.deepEqual(
    w.refused().map((r) => [r.network, r.why]),
    [
      ['198.51.100.0/24', 'it holds what is never blocked: whitelisted (198.51.100.7/32)'],
      ['2001:db8:5::/48', 'it holds what is never blocked: a trusted proxy (2001:db8:5:1::/64)'],
      ['::/48', 'it holds loopback addresses'],
    ],
  )
  assert.equal(calls.length, 4)
  // Per instance, each refused network once; a few failures there are no swarm, and nothing to tell.
  drive(w, failures.slice(0, 3), 'other')
  assert.deepEqual(w.refused().filter((r) => r.instance === 'other'), [])
  drive(w, failures, 'other')
  assert.deepEqual(w.refused().filter((r) => r.instance === 'other').map((r) => r.network), ['198.51.100.0/24'])
  assert.equal(calls.length, 4, 'the verdict is the network\'s, whatever the instance')
  // A window saved before the address was whitelisted: counted on, and forgotten, with one refusal, when it holds a swarm.
  const saved = [{instance: 'master', network: '198.51.100.0/24', first: T0, recent: [{ip: '198.51.100.1', time: T0}]}]
  const later = watchOf(swarmSettings, saved, check)
  assert.equal(later.save(T0).length, 1, 'kept while nothing fails there (it only expires)')
  assert.equal(later.add('master', '198.51.100.2', T0 + 1), null)
  assert.deepEqual(later.refused(), [])
  for (let i = 3; i <= swarmSettings.minAddresses; i++) assert.equal(later.add('master', `198.51.100.${i}`, T0 + i), null)
  assert.deepEqual(later.save(T0), [])
  assert.deepEqual(later.refused().map((r) => r.network), ['198.51.100.0/24'])
  // A network wider than a whitelisted one is refused; one inside a whitelisted network too.
  assert.match(neverBlockedIn(new NetworkList(['10.0.0.0/8']))('10.1.2.0/24') ?? '', /never blocked/)
  assert.equal(neverBlockedIn(new NetworkList(['10.0.0.0/8']))('11.1.2.0/24'), null)
  assert.match(neverBlockedIn(none)('127.0.0.0/24') ?? '', /loopback/)
})

test('networkBlock: a swarm split across two runs (save, database, read back) hits as if in one run', () => {
  const failures = swarm().concat(swarm('203.0.113', 12, 1, 7 * SEC, T0 + 3))
  failures.sort((a, b) => a.time - b.time)
  const whole = drive(watchOf(), failures)
  assert.equal(whole.length, 2)
  for (const cut of [1, 5, 9, 10, 14, 40]) {
    const first = watchOf()
    assert.deepEqual(drive(first, failures.slice(0, cut)), whole.filter((h) => h.at <= (failures[cut - 1] as Failure).time))
    // Through the database file: encoded, parsed and validated as a run reads it.
    const data = {...emptyData(), networks: first.save((failures[cut - 1] as Failure).time)}
    const read = validateData(decodeEntries(JSON.parse([...encodeChunks(data)].join(''))))
    assert.ok(read.success, JSON.stringify(read.error?.issues))
    const second = watchOf(swarmSettings, read.data.networks ?? [])
    // The second run goes on: the blocked network's later failures count against its entry.
    const done = whole.filter((h) => h.at <= (failures[cut - 1] as Failure).time).map((h) => parseCidr(h.network) as Cidr)
    const rest = failures.slice(cut).filter((f) => !done.some((c) => cidrContains(c, f.ip)))
    assert.deepEqual(drive(second, rest), whole.filter((h) => h.at > (failures[cut - 1] as Failure).time), `cut at ${cut}`)
  }
})

test('networkBlock: what is saved: open windows only, in time order; omitted from the file when empty; a changed prefix regroups', () => {
  const w = watchOf({...swarmSettings, periodMinutes: 10})
  w.add('master', '198.51.100.9', T0 + 2 * SEC)
  w.add('master', '198.51.100.3', T0)
  w.add('master', '198.51.100.9', T0 + SEC)
  w.add('master', '2001:db8:1:2::/64', T0 + 3 * SEC)
  w.add('master', '203.0.113.1', T0 - 11 * MIN)
  const saved = w.save(T0 + 10 * MIN)
  assert.deepEqual(saved, [
    {instance: 'master', network: '198.51.100.0/24', first: T0, recent: [{ip: '198.51.100.3', time: T0}, {ip: '198.51.100.9', time: T0 + 2 * SEC}]},
    {instance: 'master', network: '2001:db8:1::/48', first: T0 + 3 * SEC, recent: [{ip: '2001:db8:1:2::/64', time: T0 + 3 * SEC}]},
  ])
  assert.deepEqual(w.save(T0 + 11 * MIN), [])
  assert.ok(!['', ...encodeChunks(emptyData())].join('').includes('networks'))
  assert.ok([...encodeChunks({...emptyData(), networks: saved})].join('').includes('"networks":[{"instance":"master","network":"198.51.100.0/24"'))
  // ipv4Prefix 24 -> 16: the saved addresses count for their /16 (and the /48's for a /32).
  const wider = watchOf({ipv4Prefix: 16, ipv6Prefix: 32, minAddresses: 3, periodMinutes: 10}, [...saved, {instance: 'master', network: '198.51.7.0/24', first: T0, recent: [{ip: '198.51.7.1', time: T0}]}])
  assert.deepEqual(wider.save(T0).map((r) => [r.network, r.first, r.recent.length]).sort(), [
    ['198.51.0.0/16', T0, 3],
    ['2001:db8::/32', T0 + 3 * SEC, 1],
  ])
  // ipv6Prefix 48 -> 64: the /64 entry counts for its own /64, no narrower.
  const narrower = watchOf({...swarmSettings, ipv6Prefix: 64}, saved)
  assert.deepEqual(narrower.save(T0).map((r) => r.network), ['198.51.100.0/24', '2001:db8:1:2::/64'])
  const none96 = watchOf({...swarmSettings, ipv6Prefix: 96}, saved)
  assert.deepEqual(none96.save(T0).map((r) => r.network), ['198.51.100.0/24'])
})

test('networkBlock: records are checked like every value of the database, and repaired one by one', () => {
  const good = {instance: 'master', network: '198.51.100.0/24', first: T0, recent: [{ip: '198.51.100.1', time: T0}]}
  const bad = [
    {...good, network: '198.51.100.1/24'},
    {...good, network: '198.51.100.0'},
    {...good, network: '10.0.0.0/7'},
    {...good, network: '2001:db8::/15'},
    {...good, network: '2001:DB8::/48'},
    {...good, recent: [{ip: '198.51.100.01', time: T0}]},
    {...good, recent: [{ip: '198.51.100.0/8', time: T0}]},
    {...good, instance: 'a b'},
    {...good, recent: Array.from({length: MAX_WINDOW_ADDRESSES + 1}, (_, i) => ({ip: `10.0.${i >> 8}.${i & 255}`, time: T0}))},
  ]
  for (const b of bad) assert.equal(networkRecordSchema.safeParse(b).success, false, JSON.stringify(b).slice(0, 120))
  assert.ok(networkRecordSchema.safeParse(good).success)
  assert.ok(networkRecordSchema.safeParse({...good, network: '2001:db8:1::/48', recent: [{ip: '2001:db8:1:2::/64', time: T0}]}).success)
  const doc = {...emptyData(), networks: [good, ...bad.slice(0, 2)]}
  const d = diagnose(JSON.parse(JSON.stringify(doc)))
  assert.deepEqual(d.records.map((r) => [r.where, r.what]), [
    ['networks.1', 'the failures from the network "198.51.100.1/24" on "master"'],
    ['networks.2', 'the failures from the network "198.51.100.0" on "master"'],
  ])
  assert.deepEqual(d.repaired?.networks, [good])
  assert.equal(dataSchema.safeParse({...emptyData(), networks: Array.from({length: MAX_NETWORKS + 1}, () => good)}).success, false)
})

test('networkBlock: a flood of networks and of addresses of one network stays bounded', () => {
  const w = watchOf({...swarmSettings, minAddresses: MAX_WINDOW_ADDRESSES})
  // Each of MAX_NETWORKS + 2000 /24s once, then 1000 addresses of one /48.
  for (let i = 0; i < MAX_NETWORKS + 2000; i++) w.add('master', `10.${(i >> 8) & 255}.${i & 255}.1`, T0 + i)
  let hits = 0
  for (let i = 0; i < 1000; i++) if (w.add('master', `2001:db8:7:${i.toString(16)}::1`, T0 + 10_000 + i) !== null) hits++
  assert.equal(hits, 1000 - MAX_WINDOW_ADDRESSES + 1, 'a hit from the 128th address on (never cleared)')
  const saved = w.save(T0 + 20_000)
  assert.equal(saved.length, MAX_NETWORKS)
  assert.ok(saved.every((r) => r.recent.length <= MAX_WINDOW_ADDRESSES))
  const big = saved.at(-1)
  assert.equal(big?.network, '2001:db8:7::/48')
  assert.equal(big?.recent.length, MAX_WINDOW_ADDRESSES)
  assert.equal(big?.recent[0]?.ip, `2001:db8:7:${(1000 - MAX_WINDOW_ADDRESSES).toString(16)}::/64`, 'the oldest dropped (each address counted as its /64)')
  // The least recently failed networks went first: 2000 IPv4 ones for the later ones, one more for the IPv6 network.
  assert.equal(saved[0]?.network, `10.${(2001 >> 8) & 255}.${2001 & 255}.0/24`)
  // Least recently failed, not first seen: a network that fails again is kept.
  const lru = watchOf()
  lru.add('master', '192.0.2.1', T0)
  for (let i = 1; i < MAX_NETWORKS; i++) lru.add('master', `10.${(i >> 8) & 255}.${i & 255}.1`, T0 + i)
  lru.add('master', '192.0.2.2', T0 + MAX_NETWORKS)
  lru.add('master', '198.18.0.1', T0 + MAX_NETWORKS + 1)
  const kept = lru.save(T0).map((r) => r.network)
  assert.equal(kept.length, MAX_NETWORKS)
  assert.ok(kept.includes('192.0.2.0/24') && !kept.includes('10.0.1.0/24') && kept.includes('10.0.2.0/24'))
})

test('networkBlock: settings outside what the store keeps are refused at once', () => {
  assert.throws(() => watchOf({...swarmSettings, ipv4Prefix: 7}), RangeError)
  assert.throws(() => watchOf({...swarmSettings, ipv6Prefix: 15}), RangeError)
  assert.throws(() => watchOf({...swarmSettings, ipv4Prefix: 33}), RangeError)
  assert.throws(() => watchOf({...swarmSettings, minAddresses: 0}), RangeError)
  assert.throws(() => watchOf({...swarmSettings, periodMinutes: 0}), RangeError)
})
