/**
 * firewall.ipv6Prefix: the shared key of counting and blocking, the merge of
 * older per-address IPv6 entries into their network's entry, and a changed
 * prefix, which must leave the firewall equal to the database.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {validateConfig} from '../../src/core/config/config.js'
import {activeBlocks, newEntry} from '../../src/core/decisions/decide.js'
import {mergeIntoNetworks} from '../../src/core/decisions/networks.js'
import {desiredState} from '../../src/core/run/desired.js'
import {blockKey, compareIps, NetworkList, withoutNested} from '../../src/core/net/ip.js'
import {emptyData, type Entry} from '../../src/core/store/schema.js'

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
