/**
 * The attempt ledger's twin store (src/core/decisions/twins.ts: rows of
 * typed columns, packed sessions, IPv4 as numbers) answers as the plain
 * model it replaces: records in a Map of lists keyed by instance, session
 * and 5-second bucket (the ledger's original layout), searched over the
 * buckets next to a line's own, pruned by bucket, saved in time order.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {packSession, TwinStore} from '../../src/core/decisions/twins.js'
import type {TwinRecord} from '../../src/core/store/schema.js'
import {params} from '../helpers/property.js'

const WINDOW = 5_000

/** The ledger's original store. */
class Model {
  private readonly lists = new Map<string, TwinRecord[]>()
  private key(instance: string, session: string, b: number): string {
    return `${instance}\u0000${session}\u0000${b}`
  }

  add(r: TwinRecord): void {
    const k = this.key(r.instance, r.session, Math.floor(r.time / WINDOW))
    const l = this.lists.get(k)
    if (l === undefined) this.lists.set(k, [r])
    else l.push(r)
  }

  find(instance: string, session: string, grammar: string, time: number, fits: (r: TwinRecord) => boolean): TwinRecord | undefined {
    const b = Math.floor(time / WINDOW)
    let best: TwinRecord | undefined
    for (let k = b - 1; k <= b + 1; k++) {
      for (const r of this.lists.get(this.key(instance, session, k)) ?? []) {
        if (r.grammar === grammar || Math.abs(r.time - time) > WINDOW || !fits(r)) continue
        if (best === undefined || Math.abs(r.time - time) < Math.abs(best.time - time)) best = r
      }
    }
    return best
  }

  consume(r: TwinRecord): void {
    const k = this.key(r.instance, r.session, Math.floor(r.time / WINDOW))
    const l = this.lists.get(k) ?? []
    l.splice(l.indexOf(r), 1)
    if (l.length === 0) this.lists.delete(k)
  }

  prune(horizon: (instance: string) => number | undefined): void {
    for (const [k, l] of this.lists) {
      const h = horizon((l[0] as TwinRecord).instance)
      if (h !== undefined && l.every((t) => t.time < h)) this.lists.delete(k)
    }
  }

  records(): TwinRecord[] {
    return [...this.lists.values()].flat()
  }
}

const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
/** As AttemptLedger.save sorts them. */
const sorted = (rs: Iterable<TwinRecord>): TwinRecord[] =>
  [...rs].sort((a, b) => a.time - b.time || order(a.instance, b.instance) || order(a.session, b.session) || order(a.grammar, b.grammar) || order(a.ip ?? '', b.ip ?? ''))

const IPS = ['192.0.2.10', '255.255.255.255', '2001:db8::7']
const SESSIONS = ['k3v9x2pq', 'k3v9x2pq', 'k3v9x2pq', '', 'K3-v,9', 'k3v9x2pqa7m1c0de', 'x y']
/** Steps in time: small ones (in half seconds, so that two records are often equally close), and a jump past the prune horizon now and then. */
const step = fc.oneof({weight: 12, arbitrary: fc.integer({min: -6, max: 8}).map((n) => n * 500)}, {weight: 1, arbitrary: fc.constantFrom(60_000, 64_500, 65_000, 70_000)})

type Op =
  | {op: 'add'; instance: string; session: string; grammar: 'F1' | 'F2'; dt: number; ip: string | null; senders: string[]; counted: boolean}
  | {op: 'find'; instance: string; session: string; grammar: 'F1' | 'F2'; dt: number; ip: string | null; senders: string[]}
  | {op: 'prune'}

/** A line and, moments later, the line of the other log for the same attempt (or nearly: the same session and address). */
const pair: fc.Arbitrary<Op[]> = fc
  .record({
    instance: fc.constantFrom('a', 'a', 'b'),
    session: fc.constantFrom(...SESSIONS),
    grammar: fc.constantFrom<'F1' | 'F2'>('F1', 'F2'),
    dt: step,
    later: fc.integer({min: -4, max: 10}).map((n) => n * 500),
    ip: fc.option(fc.constantFrom(...IPS), {freq: 4}),
    senders: fc.subarray(IPS, {minLength: 1, maxLength: 3}),
    counted: fc.boolean(),
    other: fc.option(fc.constantFrom(...IPS), {freq: 3}),
  })
  .map(({instance, session, grammar, dt, later, ip, senders, counted, other}) => [
    {op: 'add', instance, session, grammar, dt, ip, senders, counted},
    {op: 'find', instance, session, grammar: grammar === 'F1' ? 'F2' : 'F1', dt: later, ip: other === null ? ip : other, senders},
  ])

const single: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('add' as const),
      instance: fc.constantFrom('a', 'a', 'b'),
      session: fc.constantFrom(...SESSIONS),
      grammar: fc.constantFrom<'F1' | 'F2'>('F1', 'F2'),
      dt: step,
      ip: fc.option(fc.constantFrom(...IPS), {freq: 4}),
      senders: fc.subarray(IPS, {maxLength: 3}),
      counted: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('find' as const),
      instance: fc.constantFrom('a', 'b'),
      session: fc.constantFrom(...SESSIONS),
      grammar: fc.constantFrom<'F1' | 'F2'>('F1', 'F2'),
      dt: step,
      ip: fc.option(fc.constantFrom(...IPS), {freq: 4}),
      senders: fc.subarray(IPS, {maxLength: 3}),
    }),
  },
  {weight: 2, arbitrary: fc.constant({op: 'prune' as const})},
)
const op: fc.Arbitrary<Op[]> = fc.oneof(single.map((o) => [o]), pair)

test('packed sessions are one number per session of up to 8 characters of [A-Za-z0-9,-]', () => {
  const seen = new Map<number, string>()
  fc.assert(
    fc.property(fc.stringMatching(/^[A-Za-z0-9,-]{0,8}$/), (s) => {
      const v = packSession(s)
      assert.ok(v >= 0 && Number.isSafeInteger(v), s)
      const other = seen.get(v)
      assert.ok(other === undefined || other === s, `${s} and ${other} pack alike`)
      seen.set(v, s)
    }),
    params(0x5e55, 5_000),
  )
  assert.equal(packSession('k3v9x2pqa'), -1)
  assert.equal(packSession('a b'), -1)
})

test('the twin store finds, consumes, prunes and saves as the plain model', () => {
  fc.assert(
    fc.property(fc.array(op, {minLength: 40, maxLength: 300}).map((o) => o.flat()), fc.integer({min: 0, max: 400_000_000}).map((n) => n * 5_000 + 2_500), (ops, t0) => {
      const store = new TwinStore(WINDOW)
      const model = new Model()
      let time = t0
      let newest = -Infinity
      for (const o of ops) {
        if (o.op === 'prune') {
          const horizon = (instance: string) => (instance === 'a' ? newest - WINDOW - 60_000 : undefined)
          store.prune(horizon)
          model.prune(horizon)
          continue
        }
        time = Math.max(0, time + o.dt)
        newest = Math.max(newest, time)
        if (o.op === 'add') {
          const senders = o.ip === null ? o.senders : undefined
          store.add(o.instance, o.session, o.grammar, time, o.ip, senders, o.counted)
          model.add(senders === undefined ? {instance: o.instance, session: o.session, grammar: o.grammar, time, ip: o.ip, counted: o.counted} : {instance: o.instance, session: o.session, grammar: o.grammar, time, ip: null, senders, counted: o.counted})
          continue
        }
        const ip = o.ip
        const row =
          ip !== null ? store.findFor(o.instance, o.session, o.grammar, time, WINDOW, ip) : store.findForSenders(o.instance, o.session, o.grammar, time, WINDOW, o.senders)
        const want = model.find(o.instance, o.session, o.grammar, time, ip !== null ? (r) => r.ip === ip || (r.ip === null && (r.senders ?? []).includes(ip)) : (r) => r.ip !== null && o.senders.includes(r.ip))
        assert.equal(row === -1, want === undefined)
        if (want === undefined) continue
        assert.deepEqual([store.grammarOf(row), store.ipOf(row), store.countedOf(row)], [want.grammar, want.ip, want.counted])
        store.consume(row)
        model.consume(want)
        // The one it consumed is the one the model found: the rest stay equal.
        assert.deepEqual(sorted(store.records()), sorted(model.records()))
      }
      assert.deepEqual(sorted(store.records()), sorted(model.records()))
      assert.equal(store.count, model.records().length)
    }),
    params(0x7715, 300),
  )
})

test('a stored record is given back as it was read', () => {
  const store = new TwinStore(WINDOW)
  const read: TwinRecord = {ip: '192.0.2.1', instance: 'a', counted: true, session: 'k3v9x2pq', grammar: 'F2', time: 1000}
  store.add(read.instance, read.session, read.grammar, read.time, read.ip, undefined, read.counted, read)
  assert.equal([...store.records()][0], read)
})
