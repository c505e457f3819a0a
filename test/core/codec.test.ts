/**
 * The schema 4 file form (store/codec.ts): the hand check of an entry agrees
 * with zod's entrySchema on arbitrary values (so the cheap path refuses
 * exactly what validation refuses, and every message is still zod's); what
 * is written reads back as it was; an entry of defaults is written short;
 * the file is valid JSON with an entry per line; and `list`'s times are
 * toISOString's.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {isAscii} from 'node:buffer'
import {decodeEntries, encodeChunks, encodeEntry, entryProblemFree, validateData} from '../../src/core/store/codec.js'
import {dataSchema, emptyData, entrySchema, type Entry} from '../../src/core/store/schema.js'
import {MAX_TIME} from '../../src/core/store/values.js'
import {parseCidr} from '../../src/core/net/ip.js'
import {isoTime} from '../../src/core/admin/list.js'
import {escapeJson} from '../../src/core/text/escape.js'
import {envInt} from '../helpers/env.js'

const RUNS = envInt('RCGUARD_PROPERTY_RUNS', 300)
const T0 = Date.UTC(2026, 10, 25, 13, 0, 0)

/** Valid values of each field, and values around their edges that are not. */
const oddNumber = fc.constantFrom(-1, -0, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, MAX_TIME, MAX_TIME + 1, 1e300)
const time = fc.oneof(fc.integer({min: 0, max: MAX_TIME}), oddNumber)
const count = fc.oneof(fc.nat(), oddNumber)
const junk = fc.oneof(fc.constant(null), fc.constant(undefined), fc.string({maxLength: 3}), fc.boolean(), fc.constant([]), fc.constant({}), oddNumber)
const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({weight: 8, arbitrary: arb}, {weight: 1, arbitrary: junk})
/** Networks of any prefix, as written (host bits and all) and in the canonical text parseCidr gives. */
const network = (address: fc.Arbitrary<string>, max: number): fc.Arbitrary<string> =>
  fc.tuple(address, fc.integer({min: 0, max}), fc.boolean()).map(([a, p, canonical]) => (canonical ? (parseCidr(`${a}/${p}`)?.text ?? `${a}/${p}`) : `${a}/${p}`))
const ip = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  network(fc.ipV4(), 33),
  network(fc.ipV6(), 129),
  fc.constantFrom(
    '2001:db8:1:2::/64', '2001:db8::/8', '10.0.0.0/8', '10.0.0.0/7', '10.0.0.1/24', '10.0.0.0/32', '2001:db8::1/128', '198.51.100.0/24',
    '10.0.0.0/08', '::ffff:10.0.0.0/104', '192.000.2.1', '2001:DB8::1', '2001:db8:0:0::1', ' 192.0.2.1', '',
  ),
)
const anyEntry = fc.record({
  ip: maybe(ip),
  instance: maybe(fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/), fc.constantFrom('', 'has space', 'x'.repeat(17)))),
  failures: maybe(fc.array(time, {maxLength: 3})),
  attempts: maybe(count),
  firstSeen: maybe(time),
  lastSeen: maybe(time),
  lastUser: maybe(fc.string({maxLength: 5})),
  blockedAt: maybe(fc.option(time, {nil: null})),
  blockedUntil: maybe(fc.option(time, {nil: null})),
  blocks: maybe(count),
  lastBlockEnd: maybe(fc.option(time, {nil: null})),
  users: maybe(fc.array(fc.oneof({weight: 9, arbitrary: fc.string({maxLength: 5})}, {weight: 1, arbitrary: junk}), {maxLength: 3})),
  comment: maybe(fc.option(fc.string({maxLength: 5}), {nil: null})),
  // The windows' fields: optional, so undefined is as valid as absent.
  rule: maybe(fc.constantFrom(undefined, 'failures:6/10', 'users:5/0.5', 'network:10/60', 'hand', 'Hand', 'failures:6/10\n', 'users:5', 'x:1/1')),
  tried: maybe(
    fc.option(
      fc.oneof(
        fc.array(fc.integer({min: 0, max: 0xffff}), {maxLength: 4}).map((gs) => gs.map((g) => g.toString(16).padStart(4, '0')).join('')),
        fc.constantFrom('', 'abc', 'ABCD', '12345', 'g000', '0000\n', ' 0000', '00000000'),
        fc.array(fc.integer({min: 0, max: 9}), {maxLength: 3}),
      ),
      {nil: undefined},
    ),
  ),
  lastSuccess: maybe(fc.option(time, {nil: undefined})),
})

test('property: the hand check of an entry accepts exactly what entrySchema accepts', () => {
  fc.assert(
    fc.property(fc.oneof({weight: 20, arbitrary: anyEntry}, {weight: 1, arbitrary: junk}), (e) => {
      assert.equal(entryProblemFree(e), entrySchema.safeParse(e).success, JSON.stringify(e))
    }),
    {seed: 41, numRuns: RUNS * 10},
  )
})

test('validateData gives zod\'s own result: the same data when valid, the same first issue when not', () => {
  fc.assert(
    fc.property(fc.array(anyEntry, {maxLength: 4}), (entries) => {
      const doc = {...emptyData(), entries}
      const fast = validateData(doc)
      const zod = dataSchema.safeParse(doc)
      assert.equal(fast.success, zod.success)
      if (fast.success && zod.success) assert.deepEqual(fast.data, zod.data)
      else assert.deepEqual(fast.error?.issues[0], zod.error?.issues[0])
    }),
    {seed: 42, numRuns: RUNS},
  )
})

// As a file can hold them: JSON has no -0.
const validEntry = anyEntry.filter((e) => entrySchema.safeParse(e).success).map((e) => JSON.parse(JSON.stringify(e)) as Entry)

test('property: what is written reads back as it was, one entry per line', () => {
  fc.assert(
    fc.property(fc.array(validEntry, {maxLength: 5}), (entries) => {
      const data = {...emptyData(), entries, firewall: {backend: 'none' as const, prefix: 'rcguard'}}
      const text = [...encodeChunks(data)].join('')
      assert.ok(text.endsWith('}\n'))
      const back = validateData(decodeEntries(JSON.parse(text)))
      assert.ok(back.success)
      assert.deepEqual(back.data, data)
      assert.equal(text.split('\n').length, entries.length === 0 ? 2 : entries.length + 3)
    }),
    {seed: 43, numRuns: RUNS},
  )
})

test('the file is pure ASCII whatever the names hold, and reads back the same', () => {
  const names = ['jürgen', '😀', 'a\u2028b', '\u001b[31m', '\ud800', 'x'.repeat(64)]
  const data = emptyData()
  data.entries.push({
    ip: '192.0.2.1', instance: 'master', failures: [T0], attempts: 1, firstSeen: T0, lastSeen: T0, lastUser: 'é',
    blockedAt: null, blockedUntil: null, blocks: 0, lastBlockEnd: null, users: names.slice(-3), comment: 'büro',
  })
  data.positions['/var/log/ründcube/errors.log'] = {dev: 1, ino: 2, offset: 0, line: 0, fingerprint: '0'.repeat(32), fingerprintBytes: 0}
  const text = [...encodeChunks(data)].join('')
  assert.ok(isAscii(Buffer.from(text)), text)
  assert.deepEqual(validateData(decodeEntries(JSON.parse(text))).success && validateData(decodeEntries(JSON.parse(text))).data, data)
})

test('an entry writes only what is not its default, and a large database in pieces', () => {
  const e: Entry = {
    ip: '192.0.2.1', instance: 'master', failures: [], attempts: 0, firstSeen: T0, lastSeen: T0, lastUser: '',
    blockedAt: null, blockedUntil: null, blocks: 0, lastBlockEnd: null, users: [], comment: null,
  }
  assert.equal(encodeEntry(e), `{"ip":"192.0.2.1","instance":"master","firstSeen":${T0},"lastSeen":${T0}}`)
  assert.equal(encodeEntry({...e, users: ['a', 'b'], lastUser: 'b'}), `{"ip":"192.0.2.1","instance":"master","firstSeen":${T0},"lastSeen":${T0},"users":["a","b"]}`)
  assert.match(encodeEntry({...e, users: ['a', 'b'], lastUser: 'a'}), /"lastUser":"a"/)
  assert.match(encodeEntry({...e, blockedAt: T0}), /"blockedAt":\d+\}$/, 'until deleted: no blockedUntil')
  const full = JSON.stringify(e).length
  assert.ok(encodeEntry(e).length < full / 2, `${encodeEntry(e).length} of ${full} characters`)
  const data = emptyData()
  for (let i = 0; i < 30_000; i++) data.entries.push({...e, ip: `10.0.${i >> 8}.${i & 255}`, users: ['x'.repeat(64)], lastUser: 'x'.repeat(64)})
  const pieces = [...encodeChunks(data)]
  assert.ok(pieces.length > 1, 'more than one piece')
  assert.equal(validateData(decodeEntries(JSON.parse(pieces.join('')))).success, true)
})

test('property: list times are toISOString\'s', () => {
  fc.assert(
    fc.property(fc.integer({min: 0, max: MAX_TIME}), (t) => {
      assert.equal(isoTime(t), new Date(t).toISOString())
    }),
    {seed: 44, numRuns: RUNS * 10},
  )
  for (const t of [0, MAX_TIME, T0, T0 + 1, T0 + 999, Date.UTC(2000, 1, 29, 23, 59, 59, 9)]) assert.equal(isoTime(t), new Date(t).toISOString())
})

test('property: a list row is written as JSON.stringify writes it, escaped by escapeJson', async () => {
  const {rowJson} = await import('../../src/ui/list-output.js')
  const t = fc.option(fc.integer({min: 0, max: MAX_TIME}).map(isoTime), {nil: null})
  const text = fc.option(fc.oneof(fc.string({unit: 'binary', maxLength: 8}), fc.constantFrom('\u001b[31m', '\u202e', 'é\u2028')), {nil: null})
  const row = fc.record({
    ip: fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({maxLength: 5})),
    state: fc.constantFrom('blocked' as const, 'watching' as const, 'whitelisted' as const),
    instance: text,
    attempts: fc.nat(),
    firstSeen: t,
    lastSeen: t,
    blockedAt: t,
    blockedUntil: t,
    lastUser: text,
    blocks: fc.nat(),
    comment: text,
    rule: fc.constantFrom(null, 'failures:6/10', 'users:5/0.5', 'hand'),
  })
  fc.assert(
    fc.property(row, (r) => {
      assert.equal(rowJson(r), escapeJson(JSON.stringify(r)))
    }),
    {seed: 45, numRuns: RUNS * 5},
  )
})
