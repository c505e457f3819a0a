/**
 * The one escape for text from outside (core/text/escape.ts), over the whole
 * Unicode range: nothing a terminal or mail reader acts on survives, nothing
 * else changes, and the escaped text always decodes back to the original.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {escapeJson, escapeText} from '../../src/core/text/escape.js'
import {params} from '../helpers/property.js'

/** The inverse of escapeText (without a cap): what the escapes name. */
function decode(s: string): string {
  return s.replace(/\\(\\|x([0-9a-f]{2})|u\{([0-9a-f]{1,6})\})/g, (_, all: string, x?: string, u?: string) => {
    if (all === '\\') return '\\'
    return String.fromCodePoint(parseInt(x ?? u ?? '', 16))
  })
}

/**
 * Code points that must never reach a terminal raw, listed by hand from the
 * Unicode standard (not from the property classes the escape uses), so the
 * test does not share the implementation's idea of what is dangerous.
 */
function mustEscape(cp: number): boolean {
  return (
    cp <= 0x1f || // C0 controls: NUL, BEL, BS, TAB, LF, CR, ESC
    (cp >= 0x7f && cp <= 0x9f) || // DEL, C1 (NEL, CSI 0x9b, OSC 0x9d)
    cp === 0xa0 || // NO-BREAK SPACE: looks like a space
    cp === 0xad || // SOFT HYPHEN: invisible
    cp === 0x61c || // ARABIC LETTER MARK
    cp === 0x180e ||
    (cp >= 0x2000 && cp <= 0x200f) || // spaces of every width, zero-width space/joiners, LRM, RLM
    cp === 0x2028 || // LINE SEPARATOR
    cp === 0x2029 || // PARAGRAPH SEPARATOR
    (cp >= 0x202a && cp <= 0x202e) || // bidi embeddings and overrides
    (cp >= 0x2060 && cp <= 0x2064) || // word joiner, invisible operators
    (cp >= 0x2066 && cp <= 0x2069) || // bidi isolates
    cp === 0x3000 || // IDEOGRAPHIC SPACE
    (cp >= 0xd800 && cp <= 0xdfff) || // surrogates (alone)
    (cp >= 0xe000 && cp <= 0xf8ff) || // private use
    cp === 0xfeff || // BOM / zero-width no-break space
    (cp >= 0xfff9 && cp <= 0xfffb) || // interlinear annotation
    (cp >= 0xfdd0 && cp <= 0xfdef) || // noncharacters
    (cp & 0xfffe) === 0xfffe || // U+xxFFFE, U+xxFFFF in every plane
    (cp >= 0xe0000 && cp <= 0xe007f) || // tag characters
    cp >= 0xf0000 // planes 15 and 16: private use
  )
}

/** Letters, digits, symbols and marks of many scripts that must pass unchanged. */
const KEEP = ['a', 'Z', '0', '@', '.', '-', '_', ' ', '~', 'é', 'ß', 'ø', 'Ж', 'ж', 'Ω', 'א', 'ب', 'क', 'ก', '日', '本', '한', '😀', '👍', '\u0301', '€', '™']

test('every code point: the escape is printable, decodes back, and keeps what is harmless', () => {
  let escaped = 0
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    const s = String.fromCodePoint(cp)
    const e = escapeText(s)
    if (e === s) {
      assert.ok(!mustEscape(cp) && cp !== 0x5c, `U+${cp.toString(16)} passed raw`)
      continue
    }
    escaped++
    // An escape is plain printable ASCII, and names exactly the character.
    assert.match(e, /^[\x20-\x7e]+$/, `U+${cp.toString(16)} escaped to ${JSON.stringify(e)}`)
    assert.equal(decode(e), s, `U+${cp.toString(16)}`)
  }
  // Unassigned code points are escaped too (a later Unicode may make them format characters): most of the range.
  assert.ok(escaped > 800_000, `${escaped} code points escaped`)
  for (const k of KEEP) assert.equal(escapeText(k), k, `${JSON.stringify(k)} kept`)
})

test('known attacks: ESC sequences, forged lines, bidi spoofing, a backslash that mimics an escape', () => {
  assert.equal(escapeText('a\r\nb\x00\x1b[31m\x7f\x85'), 'a\\x0d\\x0ab\\x00\\x1b[31m\\x7f\\x85')
  assert.equal(escapeText('evil\u202egnp.exe\u2028x\u200b'), 'evil\\u{202e}gnp.exe\\u{2028}x\\u{200b}')
  assert.equal(escapeText('a\\x0d'), 'a\\\\x0d')
  assert.equal(escapeText('\ud800lone'), '\\u{d800}lone')
  assert.equal(escapeText('\x9b2J\x1b]0;title\x07'), '\\x9b2J\\x1b]0;title\\x07')
  assert.equal(escapeText('jürgen 😀'), 'jürgen 😀')
})

test('a cap never cuts through a character or an escape', () => {
  assert.equal(escapeText('ab😀cd', {max: 4}), 'ab…')
  assert.equal(escapeText('abc\x1bdef', {max: 6}), 'abc…')
  assert.equal(escapeText('abc\x1bdef', {max: 8}), 'abc\\x1b…')
  assert.equal(escapeText('abcdef', {max: 6}), 'abcdef')
  fc.assert(
    fc.property(fc.string({unit: 'binary', maxLength: 40}), fc.integer({min: 1, max: 60}), (s, max) => {
      const whole = escapeText(s)
      const capped = escapeText(s, {max})
      assert.ok(capped.length <= max)
      if (whole.length <= max) assert.equal(capped, whole)
      else {
        assert.ok(capped.endsWith('…'))
        // What is kept is a prefix of the whole escape made of whole tokens: it decodes to a prefix of s.
        const kept = capped.slice(0, -1)
        assert.ok(whole.startsWith(kept))
        assert.ok(s.startsWith(decode(kept)), JSON.stringify({s, capped}))
      }
    }),
    params(0x11e5c, 500),
  )
})

test('any string: one printable line that decodes back to it', () => {
  fc.assert(
    fc.property(fc.string({unit: 'binary', maxLength: 60}), (s) => {
      const e = escapeText(s)
      assert.ok(!/[\n\r\u0085\u2028\u2029\u001b\u009b]/.test(e))
      for (const ch of e) assert.ok(!mustEscape(ch.codePointAt(0) ?? 0), `${JSON.stringify(ch)} in ${JSON.stringify(e)}`)
      assert.equal(decode(e), s)
    }),
    params(0x11e5d, 1000),
  )
})

test('lines mode keeps the layout rcguard wrote and escapes what it let through, without doubling backslashes', () => {
  assert.equal(escapeText('x\ty\nz\x1b[8m\\', {lines: true}), 'x\ty\nz\\x1b[8m\\')
  // Already escaped text is left as it is.
  const once = escapeText('user\u202e\x1b')
  assert.equal(escapeText(`blocked 192.0.2.1 ("${once}")`, {lines: true}), `blocked 192.0.2.1 ("${once}")`)
  assert.equal(escapeText('/var/log/rc/\x1b]0;pwned\x07.log: 3 lines\u2028', {lines: true}), '/var/log/rc/\\x1b]0;pwned\\x07.log: 3 lines\\u{2028}')
})

test('JSON keeps its data and loses every raw format character', () => {
  fc.assert(
    fc.property(fc.array(fc.string({unit: 'binary', maxLength: 20}), {maxLength: 5}), (users) => {
      const json = escapeJson(JSON.stringify({users, n: 1}, null, 2))
      assert.deepEqual(JSON.parse(json), {users, n: 1})
      for (const ch of json) {
        const cp = ch.codePointAt(0) ?? 0
        assert.ok(cp === 0x0a || !mustEscape(cp), `U+${cp.toString(16)} raw in JSON`)
      }
    }),
    params(0x11e5e, 500),
  )
})
