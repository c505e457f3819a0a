/**
 * A configuration file that is plain JSON is read with JSON.parse, without
 * loading the YAML parser (src/core/config/document.ts). JSON is YAML, so the
 * reading must be the YAML reading: the same value, or the same refusal.
 * These tests hold the JSON path to parseConfigYaml for every JSON document
 * fast-check makes, and for the cases where JSON.parse alone would differ
 * (repeated keys, deep nesting, NUL).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {parseConfigDocument, parseJsonDocument} from '../../src/core/config/document.js'
import {parseConfigYaml} from '../../src/core/config/yaml.js'
import {params} from '../helpers/property.js'

type Reading = {value: unknown} | {refused: string}

async function viaDocument(text: string): Promise<Reading> {
  try {
    return {value: await parseConfigDocument(text, 'rcguard.yml')}
  } catch (err) {
    return {refused: (err as Error).message}
  }
}

function viaYaml(text: string): Reading {
  try {
    return {value: parseConfigYaml(text, 'rcguard.yml')}
  } catch (err) {
    return {refused: (err as Error).message}
  }
}

/** Characters read.ts refuses before any parser sees the text (C1 controls, DEL). */
const REFUSED_BY_READ = /[\u007f-\u009f]/

test('property: a JSON document reads as its YAML reading, value for value (any string escapes, large and small numbers, __proto__ keys)', async () => {
  const layout = fc.constantFrom<(v: unknown) => string>(
    (v) => JSON.stringify(v),
    (v) => JSON.stringify(v, null, 2),
    (v) => `${JSON.stringify(v, null, '\t')}\n`,
    (v) => ` \r\n${JSON.stringify(v, null, 1).replaceAll('\n', '\r\n')}\r\n`,
  )
  const doc = fc.oneof(
    fc.jsonValue({maxDepth: 4}),
    fc.dictionary(fc.constantFrom('maxAttempts', 'database', '__proto__', 'a', ''), fc.jsonValue({maxDepth: 2})),
  )
  await fc.assert(
    fc.asyncProperty(doc, layout, async (value, write) => {
      const text = write(value)
      fc.pre(!REFUSED_BY_READ.test(text))
      assert.ok(parseJsonDocument(text) !== undefined, `not taken as JSON: ${text.slice(0, 80)}`)
      assert.deepStrictEqual(await viaDocument(text), viaYaml(text))
    }),
    params(0x15e0, 300),
  )
})

test('what JSON.parse would read otherwise goes to the YAML reader: repeated keys, deep nesting, NUL, numbers JSON has not', async () => {
  const cases = [
    '{"maxAttempts": 3, "maxAttempts": 4}',
    '{"firewall": {"backend": "none"}, "instances": [{"name": "a", "name": "b"}]}',
    '{"a": {"x": 1}, "b": {"x": 1, "y": {"x": 2, "x": 3}}}',
    `{"x": ${'['.repeat(70)}1${']'.repeat(70)}}`,
    `{"x": "${'['.repeat(70)}"}`,
    '{"database": "/var/lib/rcguard/db\\u0000.json"}',
    '{"x\\u0000": 1}',
    '{"maxAttempts": 0x10}',
    '{"maxAttempts": 1e400}',
    '{"a": "b:c", "d\\"e:": ":"}',
    '{"maxAttempts": -0, "a": 1.0, "b": 1E5, "c": -1.5e-3, "d": 12345678901234567890}',
    '["\\ud800", "\\/", "\\u00e9\\n\\t"]',
    '',
    '# only a comment\n',
  ]
  for (const text of cases) {
    assert.deepStrictEqual(await viaDocument(text), viaYaml(text), text)
  }
  // The first three are refused for their repeated key, as YAML refuses them; JSON.parse would keep the last.
  assert.deepEqual(await viaDocument(cases[0]!), {refused: 'configuration file rcguard.yml is refused: the key "maxAttempts" (line 1) appears twice in the same map'})
  assert.equal(parseJsonDocument(cases[2]!), undefined)
  assert.deepEqual(parseJsonDocument(cases[9]!), {value: {a: 'b:c', 'd"e:': ':'}})
})
