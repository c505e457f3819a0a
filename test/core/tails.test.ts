/**
 * The hand-written tail readers of src/core/parser/tails.ts answer exactly
 * what the regular expressions they replace answer, on texts built from the
 * tails' own pieces (where a reader that gets one detail wrong would differ)
 * and on any text.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {F1_TAIL, F2_TAIL, F3_TAIL, f1Tail, f2Tail, f3Tail, isRegexSpace} from '../../src/core/parser/tails.js'
import {lastIndexOf} from '../../src/core/parser/address.js'
import {params} from '../helpers/property.js'

const PIECES = [
  ' in ', ' on line ', ' (', ')', ' ', '(', 'POST', 'GET', 'post', 'P', '/?_task=login&_action=login', '/x)', '211', '0', '-', '--',
  '1234567890', '123456789', ' in session ', 'in session', ' (error: ', '(error: ', 'no-session', 'k3v9x2pq', 'a,b-c', '',
  '\t', '\n', '\r', '\u00a0', '\u2028', '\u3000', '\ufeff', '\u180e', '\u200b', 'é', '\ud800', 'x', 'A', '/usr/rcube_imap.php',
  ' from ', '). ', ' (ID: 4)', 'Z',
]
const text = fc.array(fc.constantFrom(...PIECES), {maxLength: 14}).map((p) => p.join(''))
/** Tails built part by part, each part right or wrong in one of the ways that matter. */
const part = (good: string, ...bad: string[]) => fc.oneof({arbitrary: fc.constant(good), weight: 6}, {arbitrary: fc.constantFrom(...bad), weight: 1})
const f1Like = fc
  .tuple(text, part(' in ', 'in ', ' in\t', ' in  ', ' In '), part('/usr/rcube_imap.php', '', 'a b', 'x\u00a0y', 'é', ')'), part(' on line ', ' on line', 'on line ', ' on  line '),
    part('211', '', '2x1', '0'), part(' (', '(', '  (', ' (('), part('POST', '', 'post', 'P OST', 'GET'), part(' ', '\t', '', '  ', '\u3000', ' '), part('/?_task=login', '', '/a b', '/x)', '(', 'é\ud800'), part(')', '', '))'), part('', ' ', 'x'))
  .map((p) => p.join(''))
const sessionLike = fc
  .tuple(text, part(' in session ', 'in session ', ' in session', ' in  session ', ' in session  '), part('k3v9x2pq', '', 'no-session', 'a,b-c', 'a b', 'é', 'x.y', 'k3v9x2pq'),
    part(' (error: ', '(error: ', ' (error:', ' (error:  ', ''), part('0', '-2', '--2', '', '123456789', '1234567890', '-', '4x', '-0', '-123456789'), part(')', '', '))'), part('', ' ', '\n'))
  .map((p) => p.join(''))
const anyText = fc.oneof(text, f1Like, sessionLike, fc.string({unit: 'binary', maxLength: 40}), fc.tuple(fc.string({maxLength: 10}), text).map(([a, b]) => a + b))

test('isRegexSpace is \\s, for every UTF-16 code unit', () => {
  for (let c = 0; c < 0x10000; c++) assert.equal(isRegexSpace(c), /\s/.test(String.fromCharCode(c)), `U+${c.toString(16)}`)
})

test('f1Tail, f2Tail, f3Tail answer as F1_TAIL, F2_TAIL, F3_TAIL', () => {
  fc.assert(
    fc.property(anyText, (t) => {
      const m1 = F1_TAIL.exec(t)
      assert.deepEqual(f1Tail(t), m1 === null ? null : {index: m1.index, method: m1[3]}, JSON.stringify(t))
      const m2 = F2_TAIL.exec(t)
      assert.deepEqual(f2Tail(t), m2 === null ? null : {head: m2[1], code: m2[3]}, JSON.stringify(t))
      const m3 = F3_TAIL.exec(t)
      assert.equal(f3Tail(t), m3 === null ? null : m3[1], JSON.stringify(t))
    }),
    params(0x7a115, 20_000),
  )
})

test('lastIndexOf is String.prototype.lastIndexOf', () => {
  fc.assert(
    fc.property(anyText, fc.constantFrom(' from ', '). ', '\n', ' ', 'from from'), (t, needle) => {
      assert.equal(lastIndexOf(t, needle), t.lastIndexOf(needle))
    }),
    params(0x1a57, 5_000),
  )
})
