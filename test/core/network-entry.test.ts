/**
 * A network entry (an IPv4 network of /8 or narrower, an IPv6 network of /16
 * or narrower, in canonical CIDR text) is a first-class entry: the database
 * accepts it in the form rcguard writes and no other, the firewall's desired
 * state blocks it whole (never when it overlaps something never blocked, and
 * without a rule of its own for an entry inside it), and unblock, list and
 * the digest speak of it as of an IPv6 network.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {validateConfig} from '../../src/core/config/config.js'
import {newEntry} from '../../src/core/decisions/decide.js'
import {unblockEntries} from '../../src/core/admin/lift.js'
import {listView} from '../../src/core/admin/list.js'
import {desiredState} from '../../src/core/run/desired.js'
import {blockKey, hostAddresses, NetworkList, parseCidr} from '../../src/core/net/ip.js'
import {entryProblemFree} from '../../src/core/store/codec.js'
import {emptyData, entrySchema, type Entry} from '../../src/core/store/schema.js'
import {entryAddressProblem, MIN_IPV4_PREFIX, MIN_IPV6_PREFIX} from '../../src/core/store/values.js'
import {buildDigest, digestText} from '../../src/core/notify/digest.js'

const T0 = Date.UTC(2026, 10, 25, 13, 0, 0)
const MIN = 60_000

function entry(ip: string, extra: Partial<Entry> = {}): Entry {
  return {...newEntry(ip, 'master', T0), ...extra}
}

function config(whitelist: string[] = ['127.0.0.0/8', '::1'], extra: Record<string, unknown> = {}) {
  return validateConfig({whitelist, firewall: {backend: 'none'}, ...extra}, 'test', '/')
}

test('the widest networks an entry can be: /8 for IPv4, /16 for IPv6', () => {
  assert.equal(MIN_IPV4_PREFIX, 8)
  assert.equal(MIN_IPV6_PREFIX, 16)
})

const ACCEPTED = ['198.51.100.0/24', '10.0.0.0/8', '10.1.2.0/31', '192.0.2.4/30', '2001:db8::/48', '2001:db8:1:2::/64', '2001::/16', '2001:db8::1:0/127', '192.0.2.7', '2001:db8::1']
const REFUSED: [string, RegExp][] = [
  ['10.0.0.0/7', /is wider than the widest network rcguard blocks \(\/8\)/],
  ['0.0.0.0/0', /is wider than the widest network rcguard blocks \(\/8\)/],
  ['10.0.0.1/24', /is not in the form rcguard writes \(10\.0\.0\.0\/24\)/],
  ['198.51.100.7/24', /is not in the form rcguard writes \(198\.51\.100\.0\/24\)/],
  ['10.0.0.0/32', /is not in the form rcguard writes \(10\.0\.0\.0\)/],
  ['2001:db8::1/128', /is not in the form rcguard writes \(2001:db8::1\)/],
  ['2001:db8::/15', /is wider than the widest network rcguard blocks \(\/16\)/],
  ['::/0', /is wider than the widest network rcguard blocks \(\/16\)/],
  ['2001:db8::1/48', /is not in the form rcguard writes \(2001:db8::\/48\)/],
  ['10.0.0.0/08', /is not in the form rcguard writes \(10\.0\.0\.0\/8\)/],
  ['10.0.0.0/33', /is not an IPv4 or IPv6 address or network/],
  ['10.0.0.0/', /is not an IPv4 or IPv6 address or network/],
  [' 10.0.0.0/8', /is not in the form rcguard writes|is not an IPv4 or IPv6/],
  ['::ffff:10.0.0.0/104', /is not an IPv4 or IPv6 address or network/],
]

test('entryAddressProblem accepts canonical IPv4 and IPv6 networks and refuses every other form, agreeing with zod and the hand check', () => {
  for (const ip of ACCEPTED) {
    assert.equal(entryAddressProblem(ip), null, ip)
    assert.equal(entrySchema.safeParse(entry(ip)).success, true, ip)
    assert.equal(entryProblemFree(entry(ip)), true, ip)
  }
  for (const [ip, why] of REFUSED) {
    assert.match(entryAddressProblem(ip) ?? 'accepted', why, ip)
    assert.equal(entrySchema.safeParse(entry(ip)).success, false, ip)
    assert.equal(entryProblemFree(entry(ip)), false, ip)
  }
})

test('the canonical text of an entry is what parseCidr writes, without the prefix of a single address', () => {
  for (const net of ['198.51.100.7/24', '10.9.9.9/8', '2001:db8:1:2:3::/48']) {
    const text = parseCidr(net)?.text ?? ''
    assert.equal(entryAddressProblem(text), null, text)
  }
})

test('desiredState blocks an IPv4 network entry whole, leaves out the entries inside it, and keeps the one outside', () => {
  const data = emptyData()
  data.entries.push(
    entry('198.51.100.0/24', {blockedAt: T0, blockedUntil: null, blocks: 1}),
    entry('198.51.100.7', {blockedAt: T0, blockedUntil: null, blocks: 1}),
    entry('198.51.100.128/25', {blockedAt: T0, blockedUntil: null, blocks: 1}),
    entry('203.0.113.9', {blockedAt: T0, blockedUntil: null, blocks: 1}),
    entry('2001:db8:7::/48', {blockedAt: T0, blockedUntil: null, blocks: 1}),
    entry('2001:db8:7:1::5', {blockedAt: T0, blockedUntil: null, blocks: 1}),
  )
  const state = desiredState(config(), data, T0).instances[0]
  assert.deepEqual(state?.v4, ['198.51.100.0/24', '203.0.113.9/32'])
  assert.deepEqual(state?.v6, ['2001:db8:7::/48'])
  // Once the network's block is over, the address inside it is blocked alone again.
  const net = data.entries[0] as Entry
  net.blockedUntil = T0 + MIN
  assert.deepEqual(desiredState(config(), data, T0 + 2 * MIN).instances[0]?.v4, ['198.51.100.7/32', '198.51.100.128/25', '203.0.113.9/32'])
})

test('desiredState never blocks an IPv4 network entry that overlaps the whitelist, a trusted proxy or loopback; the entries inside it that do not are still blocked', () => {
  const data = emptyData()
  data.entries.push(
    entry('198.51.100.0/24', {blockedAt: T0, blockedUntil: null}),
    entry('198.51.100.7', {blockedAt: T0, blockedUntil: null}),
    entry('127.0.0.0/8', {blockedAt: T0, blockedUntil: null}),
    entry('100.64.0.0/24', {blockedAt: T0, blockedUntil: null}),
  )
  assert.deepEqual(desiredState(config(['127.0.0.0/8', '::1', '198.51.100.200']), data, T0).instances[0]?.v4, ['100.64.0.0/24', '198.51.100.7/32'])
  assert.deepEqual(desiredState(config(['127.0.0.0/8', '::1'], {trustedProxies: ['100.64.0.10']}), data, T0).instances[0]?.v4, ['198.51.100.0/24'])
  // The database's whitelist too.
  data.whitelist.push({cidr: '198.51.0.0/16', comment: null, added: T0})
  assert.deepEqual(desiredState(config(), data, T0).instances[0]?.v4, ['100.64.0.0/24'])
})

test("desiredState never blocks an IPv4 network entry that holds one of this host's own addresses", (t) => {
  const own = hostAddresses().find((ip) => ip.includes('.') && !ip.startsWith('127.'))
  if (own === undefined) return t.skip('this host has no IPv4 address but loopback')
  const net = parseCidr(`${own}/24`)?.text ?? ''
  const data = emptyData()
  data.entries.push(entry(net, {blockedAt: T0, blockedUntil: null}), entry('100.64.0.0/24', {blockedAt: T0, blockedUntil: null}))
  assert.deepEqual(desiredState(config(), data, T0).instances[0]?.v4, ['100.64.0.0/24'])
})

test('blockKey leaves an IPv4 network entry as it is, whatever ipv6Prefix says', () => {
  const none = new NetworkList([])
  for (const prefix of [16, 64, 128]) assert.equal(blockKey('198.51.100.0/24', prefix, none), '198.51.100.0/24')
})

const rules = (never = new NetworkList([])) => ({now: T0, key: (ip: string) => ip, never, instances: new Set(['master'])})

test('unblock of an address inside a blocked IPv4 network deletes its own entry and names the network that still blocks it', () => {
  const data = emptyData()
  data.entries.push(entry('198.51.100.0/24', {blockedAt: T0, blockedUntil: T0 + 60 * MIN}), entry('198.51.100.7', {blockedAt: T0, blockedUntil: null}))
  const r = unblockEntries(data, ['198.51.100.7'], rules())
  assert.deepEqual(r.done, ['198.51.100.7: unblocked and forgotten; it is blocked again if it misbehaves again'])
  assert.deepEqual(r.stillInForce, [{arg: '198.51.100.7', by: '198.51.100.0/24', instance: 'master', until: T0 + 60 * MIN, fix: '"rcguard unblock 198.51.100.0/24" lifts it'}])
  assert.deepEqual(data.entries.map((e) => e.ip), ['198.51.100.0/24'])
  // Nothing of its own: only the network is named, and the address is not "not found".
  const again = unblockEntries(data, ['198.51.100.9'], rules())
  assert.deepEqual(again.done, [])
  assert.deepEqual(again.notFound, [])
  assert.equal(again.stillInForce[0]?.by, '198.51.100.0/24')
  // A narrower network inside is named the same way.
  assert.equal(unblockEntries(data, ['198.51.100.128/25'], rules()).stillInForce[0]?.by, '198.51.100.0/24')
  // A network overlapping the whitelist blocks nothing: it is not named.
  assert.deepEqual(unblockEntries(data, ['198.51.100.9'], rules(new NetworkList(['198.51.100.200']))).stillInForce, [])
})

test('unblock of an IPv4 network deletes it and every entry inside it, and nothing outside', () => {
  const data = emptyData()
  data.entries.push(
    entry('198.51.100.0/24', {blockedAt: T0, blockedUntil: null}),
    entry('198.51.100.7', {blockedAt: T0, blockedUntil: null}),
    entry('198.51.101.7', {blockedAt: T0, blockedUntil: null}),
  )
  const r = unblockEntries(data, ['198.51.100.0/24'], rules())
  assert.deepEqual(r.done, ['198.51.100.0/24: network 198.51.100.0/24, 198.51.100.7 unblocked and forgotten; it is blocked again if it misbehaves again'])
  assert.deepEqual(r.stillInForce, [])
  assert.deepEqual(data.entries.map((e) => e.ip), ['198.51.101.7'])
})

test('list --ip of an address or network finds the IPv4 network entry that overlaps it', () => {
  const data = emptyData()
  data.entries.push(entry('198.51.100.0/24', {blockedAt: T0, blockedUntil: null, lastSeen: T0}), entry('203.0.113.9', {lastSeen: T0, failures: [T0]}))
  const never = new NetworkList(['127.0.0.0/8'])
  const ips = (q: string) => [...listView(data, never, T0, {overlapping: parseCidr(q) ?? undefined, limit: 0}).rows].map((r) => r.ip)
  assert.deepEqual(ips('198.51.100.77'), ['198.51.100.0/24'])
  assert.deepEqual(ips('198.51.0.0/16'), ['198.51.100.0/24'])
  assert.deepEqual(ips('198.51.100.128/25'), ['198.51.100.0/24'])
  assert.deepEqual(ips('198.51.101.1'), [])
})

test('the digest names an IPv4 network entry as its network', () => {
  const block = {ip: '198.51.100.0/24', instance: 'master', attempts: 12, lastUser: 'bob', users: ['bob'], blockedAt: T0, blockedUntil: T0 + 60 * MIN}
  const digest = buildDigest({host: 'mail', now: T0, blocked: [block], released: []})
  assert.ok(digest !== null)
  assert.equal(digest.blocked[0]?.ip, '198.51.100.0/24')
  assert.match(digestText(digest).text, /^ {2}198\.51\.100\.0\/24 +master +12 +1 h /m)
})
