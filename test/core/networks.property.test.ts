/**
 * networkBlock (decisions/networks.ts NetworkWatch), by properties:
 * - in time order, a network hits exactly at the failures where a window of
 *   the period first holds minAddresses distinct addresses of it (since its
 *   last hit), against a brute force over the failures;
 * - in any order, it agrees with a plain model of its rule (newest failure
 *   per address, the window before the network's newest failure), so the
 *   shortcut for lines in order changes nothing; and it never hits without
 *   minAddresses addresses failing within one period;
 * - the hits do not depend on how one stream in time order is split across
 *   runs (saved, through JSON and the schema, read back);
 * - whatever a flood sends, what is tracked and saved stays bounded and valid.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {NetworkWatch, type NetworkBlockSettings, type NetworkHit} from '../../src/core/decisions/networks.js'
import {canonicalIp, cidrContains, parseCidr, type Cidr} from '../../src/core/net/ip.js'
import {MAX_NETWORKS, MAX_WINDOW_ADDRESSES} from '../../src/core/store/bounds.js'
import {networkRecordSchema, type NetworkRecord} from '../../src/core/store/schema.js'
import {params} from '../helpers/property.js'

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0)
const MIN = 60_000

interface Failure {
  instance: string
  ip: string
  time: number
}

/** The network a failure counts for, written independently of the module: parseCidr of the text with the prefix; null when the key is wider. */
function networkRef(ip: string, s: NetworkBlockSettings): string | null {
  const own = parseCidr(ip) as Cidr
  const prefix = own.family === 4 ? s.ipv4Prefix : s.ipv6Prefix
  if (own.prefix < prefix) return null
  return (parseCidr(`${own.network.toString()}/${prefix}`) as Cidr).text
}

/** The address a failure counts as, written independently too: in a network wider than /64, an IPv6 address (or narrower network) is its /64. */
function unitRef(ip: string, s: NetworkBlockSettings): string {
  const own = parseCidr(ip) as Cidr
  if (own.family === 4 || s.ipv6Prefix >= 64 || own.prefix <= 64) return ip
  return (parseCidr(`${own.network.toString()}/64`) as Cidr).text
}

/** Runs a watch over failures, clearing each hit network (without blocking it: its later failures are a new window). */
function feed(watch: NetworkWatch, failures: readonly Failure[]): NetworkHit[] {
  const hits: NetworkHit[] = []
  for (const f of failures) {
    const hit = watch.add(f.instance, f.ip, f.time)
    if (hit === null) continue
    hits.push(hit)
    watch.clear(f.instance, hit.network)
  }
  return hits
}

/** Brute force over failures in time order: the hits, with the episode's first failure and the window's count. */
function reference(failures: readonly Failure[], s: NetworkBlockSettings): NetworkHit[] {
  failures = failures.map((f) => ({...f, ip: unitRef(f.ip, s)}))
  const periodMs = s.periodMinutes * MIN
  const open = new Map<string, {first: number; last: number; fails: Failure[]}>()
  const hits: NetworkHit[] = []
  for (const f of failures) {
    const network = networkRef(f.ip, s)
    if (network === null) continue
    const key = `${f.instance} ${network}`
    let st = open.get(key)
    if (st !== undefined && f.time > st.last + periodMs) st = undefined
    if (st === undefined) st = {first: f.time, last: f.time, fails: []}
    open.set(key, st)
    st.fails.push(f)
    st.last = Math.max(st.last, f.time)
    const ips = new Set(st.fails.filter((g) => g.time >= f.time - periodMs).map((g) => g.ip))
    if (ips.size >= s.minAddresses) {
      hits.push({instance: f.instance, network, addresses: ips.size, first: st.first, at: f.time})
      open.delete(key)
    }
  }
  return hits
}

/** The module's rule in its plainest form, for any order (no bound reached): newest failure per address, the window before the newest failure. */
function model(failures: readonly Failure[], s: NetworkBlockSettings): NetworkHit[] {
  failures = failures.map((f) => ({...f, ip: unitRef(f.ip, s)}))
  const periodMs = s.periodMinutes * MIN
  const open = new Map<string, {first: number; last: number; recent: Map<string, number>}>()
  const hits: NetworkHit[] = []
  for (const f of failures) {
    const network = networkRef(f.ip, s)
    if (network === null) continue
    const key = `${f.instance} ${network}`
    let st = open.get(key)
    if (st !== undefined && f.time > st.last + periodMs) st = undefined
    if (st === undefined) st = {first: f.time, last: f.time, recent: new Map()}
    open.set(key, st)
    st.first = Math.min(st.first, f.time)
    st.last = Math.max(st.last, f.time)
    st.recent.set(f.ip, Math.max(st.recent.get(f.ip) ?? -Infinity, f.time))
    const from = st.last - periodMs
    const count = [...st.recent.values()].filter((t) => t >= from).length
    for (const [ip, t] of st.recent) if (t < from) st.recent.delete(ip)
    if (count >= s.minAddresses) {
      hits.push({instance: f.instance, network, addresses: count, first: st.first, at: f.time})
      open.delete(key)
    }
  }
  return hits
}

/** The canonical text of an address or network, as the parser (and blockKey) hand it on. */
const canonical = (text: string): string => (text.includes('/') ? (parseCidr(text) as Cidr).text : (canonicalIp(text) as string))

/** Addresses of a few networks that join or part with the prefixes drawn: two adjacent /24s, another, IPv6 in two /48s over several /64s, and /64 keys. */
const ipArb = fc.oneof(
  fc.tuple(fc.constantFrom('198.51.100', '198.51.101', '203.0.113'), fc.nat({max: 9})).map(([n, h]) => `${n}.${h * 20 + 1}`),
  fc.tuple(fc.constantFrom('2001:db8:1', '2001:db8:2'), fc.nat({max: 3}), fc.nat({max: 3})).map(([n, sub, h]) => canonical(`${n}:${sub}::${h + 1}`)),
  fc.tuple(fc.constantFrom('2001:db8:1', '2001:db8:2'), fc.nat({max: 4})).map(([n, sub]) => canonical(`${n}:${sub}::/64`)),
)
const failureArb = fc.record({
  instance: fc.constantFrom('master', 'master', 'other'),
  ip: ipArb,
  // Whole half minutes, mostly: failures exactly a period apart (the window's edge) are common.
  time: fc.oneof({weight: 3, arbitrary: fc.nat({max: 80}).map((t) => T0 + t * 30_000)}, {weight: 1, arbitrary: fc.nat({max: 40 * MIN}).map((t) => T0 + t)}),
})
const settingsArb = fc.record({
  ipv4Prefix: fc.constantFrom(23, 24, 25),
  ipv6Prefix: fc.constantFrom(32, 48, 64),
  minAddresses: fc.integer({min: 2, max: 6}),
  periodMinutes: fc.integer({min: 1, max: 15}),
})
const inOrder = (fs: readonly Failure[]): Failure[] => [...fs].sort((a, b) => a.time - b.time)

test('property: in time order, a network hits exactly where a window first holds minAddresses of its addresses', () => {
  fc.assert(
    fc.property(fc.array(failureArb, {maxLength: 80}), settingsArb, (raw, s) => {
      const failures = inOrder(raw)
      assert.deepEqual(feed(new NetworkWatch([], s, () => null), failures), reference(failures, s))
    }),
    params(0x6e657431, 400),
  )
})

test('property: in any order, the hits follow the rule as plainly written, and each has minAddresses addresses within one period', () => {
  fc.assert(
    fc.property(fc.array(failureArb, {maxLength: 80}), settingsArb, (failures, s) => {
      const hits = feed(new NetworkWatch([], s, () => null), failures)
      assert.deepEqual(hits, model(failures, s))
      const periodMs = s.periodMinutes * MIN
      for (const h of hits) {
        const net = parseCidr(h.network) as Cidr
        const upTo = failures.findIndex((f) => f.time === h.at && f.instance === h.instance && networkRef(f.ip, s) === h.network)
        const mine = failures.slice(0, upTo + 1).filter((f) => f.instance === h.instance && networkRef(f.ip, s) === h.network)
        assert.ok(mine.every((f) => cidrContains(net, f.ip.split('/')[0] ?? '')))
        const ok = mine.some((f) => new Set(mine.filter((g) => g.time >= f.time && g.time <= f.time + periodMs).map((g) => g.ip)).size >= s.minAddresses)
        assert.ok(ok, `${h.network} hit without ${s.minAddresses} addresses within ${s.periodMinutes} min`)
      }
    }),
    params(0x6e657432, 400),
  )
})

test('property: the hits of a stream in time order do not depend on how it is split across runs', () => {
  fc.assert(
    fc.property(
      fc.array(failureArb, {maxLength: 80}),
      settingsArb,
      fc.array(fc.nat({max: 80}), {maxLength: 4}),
      fc.array(fc.double({min: 0, max: 1, noNaN: true}), {minLength: 4, maxLength: 4}),
      (raw, s, cutsRaw, nows) => {
        const failures = inOrder(raw)
        const whole = feed(new NetworkWatch([], s, () => null), failures)
        const cuts = [...new Set(cutsRaw.map((c) => Math.min(c, failures.length)))].sort((a, b) => a - b)
        let records: NetworkRecord[] = []
        const split: NetworkHit[] = []
        let from = 0
        for (const [i, cut] of [...cuts, failures.length].entries()) {
          const watch = new NetworkWatch(records, s, () => null)
          split.push(...feed(watch, failures.slice(from, cut)))
          // The run's now: at or after its last line, not after the next run's first.
          const last = failures[cut - 1]?.time ?? T0
          const next = failures[cut]?.time ?? last + 60 * MIN
          const now = Math.round(last + (nows[i % nows.length] ?? 0) * (next - last))
          records = JSON.parse(JSON.stringify(watch.save(now))) as NetworkRecord[]
          for (const r of records) assert.ok(networkRecordSchema.safeParse(r).success, JSON.stringify(r))
          from = cut
        }
        assert.deepEqual(split, whole)
      },
    ),
    params(0x6e657433, 300),
  )
})

/** A deterministic stream from a few numbers: k networks (IPv4 /24s and IPv6 /48s), addresses drawn from a per-network pool, times jittered. */
function flood(seed: number, networks: number, pool: number, length: number, jitterMs: number): Failure[] {
  let x = seed | 1
  const rnd = (n: number): number => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
  const out: Failure[] = []
  for (let i = 0; i < length; i++) {
    const net = rnd(networks)
    const host = rnd(pool)
    const ip = net % 2 === 0 ? `10.${(net >> 9) & 255}.${(net >> 1) & 255}.${host & 255}` : canonical(`2001:db8:${(net >> 1).toString(16)}:${host.toString(16)}::1`)
    out.push({instance: 'master', ip, time: T0 + i * 100 + rnd(jitterMs + 1)})
  }
  return out
}

test('property: under a flood of networks and addresses, in order or not, what is tracked and saved stays bounded and valid', () => {
  fc.assert(
    fc.property(
      fc.integer(),
      fc.integer({min: 1, max: 3 * MAX_NETWORKS}),
      fc.integer({min: 1, max: 4 * MAX_WINDOW_ADDRESSES}),
      fc.integer({min: 1, max: 30_000}),
      fc.constantFrom(0, 0, 5_000, 3 * MIN),
      fc.integer({min: 1, max: 10}),
      (seed, networks, pool, length, jitter, minutes) => {
        const s = {ipv4Prefix: 24, ipv6Prefix: 48, minAddresses: MAX_WINDOW_ADDRESSES, periodMinutes: minutes}
        const failures = flood(seed, networks, pool, length, jitter)
        const watch = new NetworkWatch([], s, () => null)
        let hits = 0
        for (const f of failures) {
          const hit = watch.add(f.instance, f.ip, f.time)
          if (hit !== null) {
            hits++
            assert.ok(hit.addresses <= MAX_WINDOW_ADDRESSES)
          }
        }
        if (pool < MAX_WINDOW_ADDRESSES) assert.equal(hits, 0)
        // save(0): everything tracked, open or not.
        const all = watch.save(0)
        assert.ok(all.length <= MAX_NETWORKS, `${all.length} networks tracked`)
        const periodMs = minutes * MIN
        const keys = new Set<string>()
        for (const r of all) {
          assert.ok(r.recent.length >= 1 && r.recent.length <= MAX_WINDOW_ADDRESSES)
          assert.equal(new Set(r.recent.map((a) => a.ip)).size, r.recent.length)
          const times = r.recent.map((a) => a.time)
          assert.deepEqual(times, [...times].sort((a, b) => a - b), 'saved in time order')
          assert.ok((times.at(-1) as number) - (times[0] as number) <= periodMs, 'one window')
          const net = parseCidr(r.network) as Cidr
          assert.ok(r.recent.every((a) => cidrContains(net, a.ip.split('/')[0] as string)))
          keys.add(`${r.instance} ${r.network}`)
        }
        assert.equal(keys.size, all.length)
        // Valid records, read back to the same.
        const sample = all.slice(0, 200)
        for (const r of sample) assert.ok(networkRecordSchema.safeParse(r).success)
        assert.deepEqual(new NetworkWatch(all, s, () => null).save(0), all)
      },
    ),
    params(0x6e657434, 25),
  )
})
