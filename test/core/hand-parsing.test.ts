/**
 * What the parser reads by hand, for speed, answers exactly what the
 * expressions or library calls it replaces answer: the tail readers of
 * src/core/parser/tails.ts, lastIndexOf, the PHP default date, and plain
 * IPv4 in NetworkList and canonicalIp. Texts are built from the shapes' own
 * pieces (where a reader that gets one detail wrong would differ), and any
 * text.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import ipaddr from 'ipaddr.js'
import {F1_AGAINST, F1_TAIL, F2_TAIL, F3_TAIL, f1Tail, f2Tail, f3Tail, isRegexSpace, withoutAgainst} from '../../src/core/parser/tails.js'
import {autoDateByExpressions, parseAutoDate} from '../../src/core/parser/dates.js'
import {canonicalIp, cidrContains, NetworkList, parseCidr, type Cidr} from '../../src/core/net/ip.js'
import {ENVELOPES, FILE} from '../../src/core/parser/envelopes.js'
import {SESSION_PREFIX, sessionPrefixEnd} from '../../src/core/parser/parse.js'
import {lastIndexOf} from '../../src/core/parser/address.js'
import {params} from '../helpers/property.js'

const PIECES = [
  ' in ', ' on line ', ' (', ')', ' ', '(', 'POST', 'GET', 'post', 'P', '/?_task=login&_action=login', '/x)', '211', '0', '-', '--',
  '1234567890', '123456789', ' in session ', 'in session', ' (error: ', '(error: ', 'no-session', 'k3v9x2pq', 'a,b-c', '',
  '\t', '\n', '\r', '\u00a0', '\u2028', '\u3000', '\ufeff', '\u180e', '\u200b', 'é', '\ud800', 'x', 'A', '/usr/rcube_imap.php',
  ' from ', '). ', ' (ID: 4)', 'Z', ' against ', 'localhost', 'against', ' against  ',
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

test('withoutAgainst is .replace(F1_AGAINST, \'\')', () => {
  fc.assert(
    fc.property(anyText, (t) => assert.equal(withoutAgainst(t), t.replace(F1_AGAINST, ''), JSON.stringify(t))),
    params(0xa6a1, 10_000),
  )
})

/** Dates in PHP's default shape and near it, right and wrong. */
const dateLike = fc
  .tuple(
    part('25', '5', '05', '125', 'x5', '', '31', '32', '00'),
    part('-', '/', ' ', ''),
    part('Nov', 'nov', 'NOV', 'Xyz', 'Dec', 'Jan', 'Ma', 'Mayy', 'Sept'),
    part('-', '/', ''),
    part('2026', '226', '20266', '0000', '1969'),
    part(' ', 'T', '  ', ''),
    part('13', '1', '24', '23', '99'),
    part(':', '', '.'),
    part('00', '5', '59', '60', '61'),
    part(':', ''),
    part('00', '7', '59', '60', '61', '60.5'),
    part('', '.123456', '.1', ' UTC', ' Europe/Berlin', ' Z', ',5'),
    part(' +0000', ' -0530', ' +05:30', ' +0000 ', '+0000', ' +000', ' +00000', ' 0000', ' *0000', ' +00:0', ' -12:00', ' +2400', ''),
  )
  .map((p) => p.join(''))

test('parseAutoDate reads the PHP default date by hand as the expressions read it', () => {
  fc.assert(
    fc.property(fc.oneof(dateLike, fc.string({maxLength: 30})), fc.constantFrom(undefined, 'UTC', 'Europe/Berlin', 'America/St_Johns'), (t, zone) => {
      assert.equal(parseAutoDate(t, zone), autoDateByExpressions(t, zone), JSON.stringify(t))
    }),
    params(0xda7e, 10_000),
  )
})

/** Addresses in plain dotted decimal and near it. */
const v4Like = fc.oneof(
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.')),
  fc.array(fc.constantFrom('0', '1', '9', '10', '127', '192', '255', '256', '01', '00', '.', '..', '', 'a', ' ', '1e1'), {minLength: 1, maxLength: 8}).map((p) => p.join('')),
  fc.array(fc.constantFrom('0', '1', '25', '255', '256', '08'), {minLength: 4, maxLength: 5}).map((p) => p.join('.')),
)

test('plain IPv4: canonicalIp gives one string per address, of its own; NetworkList matches it as ipaddr.js does', () => {
  const lists = [
    ['127.0.0.0/8', '::1/128'],
    ['0.0.0.0/0'],
    ['192.0.2.0/24', '2001:db8::/32', '198.51.100.7', '10.0.0.0/8', '255.255.255.255/32'],
    ['1.2.3.4/31', '100.64.0.0/10', '128.0.0.0/1', '192.0.2.0/25'],
  ].map((l) => ({cidrs: l.map((n) => parseCidr(n) as Cidr), nets: new NetworkList(l)}))
  fc.assert(
    fc.property(v4Like, (t) => {
      const c = canonicalIp(t)
      // Plain dotted decimal is canonical as it is.
      if (ipaddr.IPv4.isValidFourPartDecimal(t) && !/(^|\.)0\d/.test(t)) assert.equal(c, t)
      if (c === null) return
      assert.equal(canonicalIp(t.slice(0)), c)
      for (const {cidrs, nets} of lists) assert.equal(nets.match(c)?.text, cidrs.find((n) => cidrContains(n, c))?.text, `${c} in ${cidrs.map((n) => n.text).join(' ')}`)
    }),
    params(0x1b4, 5_000),
  )
})

test('the file envelope and the session prefix are read by hand as FILE and SESSION_PREFIX read them', () => {
  const date = fc.oneof(fc.constantFrom('25-Nov-2026 13:00:00 +0000', '25-Nov-2026 13:00:01 +0000', '2026-11-25 08:44:43.062347 -0500', 'garbage', '', ']', 'x'.repeat(64), 'x'.repeat(65)),
    // Dates of 63 to 66 characters that parse (an unknown zone name is read in the log's zone).
    fc.integer({min: 42, max: 45}).map((n) => `25-Nov-2026 13:00:00 Z${'z'.repeat(n)}`),
    fc.string({maxLength: 70}),
  )
  const sid = fc.oneof(fc.constantFrom('k3v9x2pq', '', 'a'.repeat(64), 'a'.repeat(65), 'k3-v,9', 'k3 v', 'é'), fc.stringMatching(/^[A-Za-z0-9,<> -]{0,70}$/))
  const line = fc
    .tuple(part('[', '', '[['), date, part(']: ', ']:', ']', ']  ', ': '), part('<', '', '<<'), sid, part('> ', '>', '>  ', ''), fc.string({maxLength: 12}))
    .map(([a, d, b, c, s, e, rest]) => ({line: `${a}${d}${b}${c}${s}${e}${rest}`, body: `${c}${s}${e}${rest}`}))
  fc.assert(
    fc.property(line, ({line, body}) => {
      const m = SESSION_PREFIX.exec(body)
      assert.equal(sessionPrefixEnd(body), m === null ? -1 : m[0].length, JSON.stringify(body))
      const f = FILE.exec(line)
      // Two lines in a row: the second one may take its time from the one-entry date cache.
      const ctx = {ident: 'roundcube', now: 0}
      for (let k = 0; k < 2; k++) {
        const got = ENVELOPES.file.match(line, ctx)
        const time = f === null ? null : parseAutoDate(f[1] ?? '')
        assert.deepEqual(got, f === null || time === null ? null : {id: 'file', time, body: line.slice(f[0].length)}, JSON.stringify(line))
      }
    }),
    params(0xf11e, 10_000),
  )
})
