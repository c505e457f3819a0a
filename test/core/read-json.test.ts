/**
 * The database's JSON read an entry at a time when large (store/read-json.ts):
 * the same value as JSON.parse for every layout (whitespace, nesting, strings
 * holding brackets, quotes and escapes), and a SyntaxError where JSON.parse
 * has one. WHOLE_PARSE_BYTES is passed over by padding the documents.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {parseDatabaseJson, WHOLE_PARSE_BYTES} from '../../src/core/store/read-json.js'
import {envInt} from '../helpers/env.js'

const RUNS = envInt('RCGUARD_PROPERTY_RUNS', 60)
/** Whitespace that makes a document large enough to be split. */
const PAD = ' '.repeat(WHOLE_PARSE_BYTES)

const tricky = fc.oneof(fc.string(), fc.constantFrom('"', '\\', '\\"', '[', ']', '{', '}', ',', '"entries"', '\\\\', 'é', '😀', '\u2028'))
const value = fc.letrec((tie) => ({
  v: fc.oneof({depthSize: 'small'}, fc.integer(), fc.boolean(), fc.constant(null), tricky, fc.array(tie('v'), {maxLength: 3}), fc.dictionary(tricky, tie('v'), {maxKeys: 3})),
})).v

test('property: a large document parses to what JSON.parse gives, whatever its layout', () => {
  fc.assert(
    fc.property(fc.array(value, {maxLength: 6}), fc.dictionary(fc.string(), value, {maxKeys: 3}), fc.boolean(), (entries, others, pretty) => {
      const doc = {schemaVersion: 4, ...others, entries, after: {entries: 'not these'}}
      const json = pretty ? JSON.stringify(doc, null, 2) : JSON.stringify(doc)
      const bytes = Buffer.from(`${json}${PAD}`)
      assert.deepEqual(parseDatabaseJson(bytes), JSON.parse(json))
    }),
    {seed: 7, numRuns: RUNS},
  )
})

test('a large file that is no valid JSON throws a SyntaxError', () => {
  for (const bad of ['{"entries":[1,,2]}', '{"entries":[1,2', '{"entries":[{"a":"b}]}', '{"entries":[1] "x":2}', '{"entries":[,]}', '[1,2]x']) {
    assert.throws(() => JSON.parse(bad), SyntaxError, bad)
    assert.throws(() => parseDatabaseJson(Buffer.from(`${bad}${PAD}`)), SyntaxError, bad)
  }
  // Not an object at the top, or no entries: parsed whole, as JSON.parse would.
  assert.deepEqual(parseDatabaseJson(Buffer.from(`[1,2]${PAD}`)), [1, 2])
  assert.deepEqual(parseDatabaseJson(Buffer.from(`{"x":[1]}${PAD}`)), {x: [1]})
})

test('entries parsed in batches: items across batch boundaries, strings full of brackets and escapes, and a trailing comma refused', async () => {
  const {BATCH_BYTES} = await import('../../src/core/store/read-json.js')
  const big = (i: number) => ({ip: `item ${i}`, text: `[{"\\\\,]}`.repeat(Math.ceil(BATCH_BYTES / 30)), nested: [[i], {a: [i, {b: ']'}]}]})
  const doc = {schemaVersion: 4, entries: Array.from({length: 7}, (_, i) => (i % 3 === 2 ? i : big(i))), whitelist: []}
  for (const json of [JSON.stringify(doc), JSON.stringify(doc, null, 1)]) {
    assert.deepEqual(parseDatabaseJson(Buffer.from(`${json}${PAD}`)), doc)
  }
  const trailing = JSON.stringify(doc).replace(/\],"whitelist"/, ',],"whitelist"')
  assert.throws(() => JSON.parse(trailing), SyntaxError)
  assert.throws(() => parseDatabaseJson(Buffer.from(trailing)), SyntaxError)
  const doubled = JSON.stringify(doc).replace('},{', '},,{')
  assert.throws(() => parseDatabaseJson(Buffer.from(doubled)), SyntaxError)
})
