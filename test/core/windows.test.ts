/**
 * The windows beside the first rule (decisions/windows.ts): the user
 * windows over the failure times' name tags decide as brute force does, names compare as
 * accounts, and the Decider blocks the slow guesser and the scanner while it
 * leaves the stale phone, the forgotten password and the office NAT alone.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {DEFAULT_WINDOWS, findUsers, nameHash, nameTag, RULE_PATTERN, ruleName, ruleShort, ruleText, tagsOf, tagsText, windowsOf} from '../../src/core/decisions/windows.js'
import {Decider, type DecisionSettings, type SourcedEvent} from '../../src/core/decisions/decide.js'
import {NetworkList} from '../../src/core/net/ip.js'
import {accountOf} from '../../src/core/decisions/attempts.js'
import {cutUser} from '../../src/core/store/bounds.js'
import {emptyData, type StoreData} from '../../src/core/store/schema.js'

const MIN = 60_000
const T0 = Date.UTC(2026, 11, 1, 8, 0, 0)

/** The first failure's time `end` at or after `at` (and within periodMs of it) whose window [end - periodMs, end] holds count known names, or -1. */
function naiveUsers(kept: readonly [number, number][], count: number, periodMs: number, at: number): number {
  for (const [end] of kept) {
    if (end < at || end > at + periodMs) continue
    const names = new Set(kept.filter(([t, g]) => t <= end && t >= end - periodMs && g !== 0).map(([, g]) => g))
    if (names.size >= count) return end
  }
  return -1
}

test('property: findUsers over the failure times and their tags finds the earliest window holding the new failure that brute force finds', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({gap: fc.integer({min: -3 * MIN, max: 20 * MIN}), name: fc.integer({min: 0, max: 6})}), {minLength: 1, maxLength: 120}),
      fc.subarray([5, 10, 30, 60], {minLength: 1}),
      fc.integer({min: 2, max: 5}),
      fc.integer({min: 0, max: 3}),
      (steps, periods, count, base) => {
        const windows = windowsOf({maxAttempts: 6, periodMinutes: 10, windows: periods.map((p) => ({maxUsers: count, periodMinutes: p}))})
        // Sorted (time, tag) as the Decider keeps them, a new failure after those of its time; name 6: a tag not known (0).
        let kept: [number, number][] = []
        let t = T0
        for (const s of steps) {
          t += s.gap
          const g = s.name === 6 ? 0 : nameTag(`user${s.name}`)
          let i = kept.length
          while (i > 0 && (kept[i - 1] as [number, number])[0] > t) i--
          kept.splice(i, 0, [t, g])
          const newest = (kept[kept.length - 1] as [number, number])[0]
          const drop = kept.findIndex(([x]) => x >= newest - windows.longestMs)
          kept = kept.slice(drop)
          const at = i - drop
          // Laid out as the Decider's rows are: the times and the tags at offsets of their own arrays.
          const times = new Float64Array(base + kept.length)
          const tags = new Uint16Array(2 * base + kept.length)
          kept.forEach(([x, y], j) => {
            times[base + j] = x
            tags[2 * base + j] = y
          })
          for (const w of windows.users) {
            const want = at < 0 ? -1 : naiveUsers(kept, w.count, w.periodMs, t)
            assert.equal(findUsers(times, base, tags, 2 * base, kept.length, at, w.count, w.periodMs), want, `window ${w.rule}`)
          }
        }
      },
    ),
    {seed: 1301, numRuns: 300},
  )
})

test('a name tag is its hash folded to 16 bits and never 0; tags round-trip through the text an entry keeps', () => {
  for (const name of ['alice', 'bob', '', 'x'.repeat(80), 'été']) {
    const g = nameTag(name)
    assert.ok(g >= 1 && g <= 0xffff, name)
    const h = nameHash(name)
    assert.equal(g, ((h ^ (h >>> 16)) & 0xffff) || 1)
  }
  const tags = [0, 1, 0xabcd, 0xffff, 0x0f00]
  const text = tagsText(tags, 0, tags.length)
  assert.equal(text, '00000001abcdffff0f00')
  assert.deepEqual(tagsOf(text, tags.length), tags)
  // Of another length than the failures (a database written without a user window): all unknown.
  assert.deepEqual(tagsOf(text, 3), [0, 0, 0])
  assert.deepEqual(tagsOf(undefined, 2), [0, 0])
})

test('a name is compared as an account: case and surrounding blanks make no new name, a domain does', () => {
  assert.equal(nameHash('Alice'), nameHash(' alice '))
  assert.equal(nameHash('ALICE@EXAMPLE.COM'), nameHash('alice@example.com'))
  assert.notEqual(nameHash('alice'), nameHash('alice@example.com'))
  assert.notEqual(nameHash('alice'), nameHash('bob'))
  // Cut as entries cut names: two names alike in their first 64 characters are one.
  assert.equal(nameHash(`${'x'.repeat(64)}a`), nameHash(`${'x'.repeat(64)}b`))
})

test('property: a name\'s hash is that of its account, whatever the client sent (controls, blanks, any code point, any length)', () => {
  const fnv = (text: string): number => {
    let h = 0x811c9dc5
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
    return h >>> 0
  }
  const piece = fc.oneof(fc.string({unit: 'binary', maxLength: 80}), fc.constantFrom(' ', '\n', '\t', '\u00a0', 'A', 'Z', '@', '\u{1F600}', 'İ', 'ß', '\u0000'))
  fc.assert(
    fc.property(fc.array(piece, {maxLength: 6}).map((p) => p.join('')), (user) => {
      assert.equal(nameHash(user), fnv(cutUser(accountOf(user))), JSON.stringify(user))
    }),
    {seed: 1302, numRuns: 2000},
  )
})

test('rule names: what entries keep, in words and in a table cell', () => {
  assert.equal(ruleName('failures', 24, 60), 'failures:24/60')
  assert.equal(ruleName('users', 5, 0.5), 'users:5/0.5')
  assert.equal(ruleText('failures:24/60'), '24 failures within 60 min')
  assert.equal(ruleText('users:5/60'), '5 user names within 60 min')
  assert.equal(ruleShort('users:5/60'), '5 users in 60m')
  assert.equal(ruleShort('failures:6/10'), '6 in 10m')
  for (const ok of ['failures:6/10', 'users:5/60', 'network:10/60', 'account:20/10', 'hand', 'users:5/0.5']) assert.match(ok, RULE_PATTERN)
  for (const bad of ['failures:6', 'failures:6/10\n', 'rm -rf:1/1', '', 'hand ', 'users:5/60;x']) assert.doesNotMatch(bad, RULE_PATTERN)
})

/** One failure (or success) line's event. */
function ev(ip: string, user: string, time: number, outcome: 'failure' | 'success' = 'failure', n = 0): SourcedEvent {
  return {grammar: 'F4', outcome, time, ip, user, session: null, errorCode: null, counted: outcome === 'failure', reason: 'r', instance: 'master', file: 'f', lineNo: n}
}

const defaults: DecisionSettings = {maxAttempts: 6, periodMinutes: 10, blockMinutes: 60, windows: DEFAULT_WINDOWS}

/** Applies the events in order; the blocks, each as `ip rule at-minute`. */
function run(events: SourcedEvent[], settings: DecisionSettings = defaults, data: StoreData = emptyData()): string[] {
  const decider = new Decider(data, settings, new NetworkList([]), T0, false)
  const out: string[] = []
  for (const e of events) {
    const d = decider.apply(e)
    if (d.action === 'blocked') out.push(`${d.key} ${d.rule} ${((d.blockedAt ?? 0) - T0) / MIN}`)
  }
  decider.flush()
  return out
}

test('a slow guesser (5 failures in every 10 minutes, all day) is blocked by the slow window within its first hour; the first rule alone never blocks it', () => {
  // One failure every 130 seconds: 6 of them span 10 min 50 s, 24 of them 49 min 50 s; 664 a day.
  const events: SourcedEvent[] = []
  for (let i = 0; i < 664; i++) events.push(ev('203.0.113.5', 'admin', T0 + i * 130_000))
  assert.deepEqual(run(events, {...defaults, windows: []}), [])
  const blocks = run(events)
  assert.equal(blocks[0], `203.0.113.5 failures:24/60 ${(23 * 130_000) / MIN}`)
})

test('a phone retrying a stale password every 3 minutes for a day, and a user who forgot a password, are never blocked', () => {
  const phone: SourcedEvent[] = []
  for (let i = 0; i < 480; i++) phone.push(ev('198.51.100.20', 'carol@example.com', T0 + i * 3 * MIN))
  assert.deepEqual(run(phone), [])
  // Forgot it: five tries in ten minutes, two spellings of the name, again an hour later.
  const forgot = ['dave', 'dave', 'Dave@example.com', 'dave', 'dave'].flatMap((u, i) => [ev('198.51.100.30', u, T0 + i * 2 * MIN), ev('198.51.100.30', u, T0 + 60 * MIN + i * 2 * MIN)])
  assert.deepEqual(run(forgot.sort((a, b) => a.time - b.time)), [])
})

test('a scanner trying a fifth user name within the hour is blocked by the user window, at that failure', () => {
  const names = ['admin', 'root', 'info', 'test', 'webmaster']
  const events = names.map((u, i) => ev('192.0.2.9', u, T0 + i * 12 * MIN))
  assert.deepEqual(run(events), [`192.0.2.9 users:5/60 48`])
  // The same names over more than an hour: no window holds five.
  assert.deepEqual(run(names.map((u, i) => ev('192.0.2.9', u, T0 + i * 16 * MIN))), [])
})

test('an office NAT that logs in all day is not blocked by the windows for its users\' typos; the first rule still stops a burst from it', () => {
  const nat = '192.0.2.77'
  const events: SourcedEvent[] = []
  // 40 users, each a typo then a success, one every 5 minutes: 12 names an hour fail from one address.
  for (let i = 0; i < 40; i++) {
    events.push(ev(nat, `user${i}`, T0 + i * 5 * MIN))
    events.push(ev(nat, `user${i}`, T0 + i * 5 * MIN + 20_000, 'success'))
  }
  assert.deepEqual(run(events), [])
  // Without its successes the same typos are a scanner's pattern.
  assert.equal(run(events.filter((e) => e.outcome === 'failure'))[0], `${nat} users:5/60 20`)
  // A burst within 10 minutes is blocked by the first rule all the same (its 5th line with the typo at 195 min is the 6th failure).
  const burst = [...events, ...[1, 2, 3, 4, 5, 6].map((i) => ev(nat, 'boss', T0 + 201 * MIN + i * 1000))].sort((a, b) => a.time - b.time)
  assert.deepEqual(run(burst), [`${nat} failures:6/10 ${(201 * MIN + 5000) / MIN}`])
})

test('the windows\' state survives between runs: a slow guess split over many cron runs is blocked as in one', () => {
  const data = emptyData()
  const blocks: string[] = []
  // One cron run each 10 minutes, each reading the 4 or 5 failures (130 s apart) its 10 minutes hold.
  for (let i = 0; i < 30; i++) {
    blocks.push(...run([ev('203.0.113.6', `u${i % 2}`, T0 + i * 130_000)], defaults, data))
    assert.ok((data.entries[0]?.failures.length ?? 0) <= 24)
  }
  assert.deepEqual(blocks, [`203.0.113.6 failures:24/60 ${(23 * 130_000) / MIN}`])
  assert.equal(data.entries[0]?.rule, 'failures:24/60')
  // And the scanner's names, one run each.
  const scan = emptyData()
  const got = ['a', 'b', 'c', 'd', 'e'].flatMap((u, i) => run([ev('192.0.2.10', u, T0 + i * 5 * MIN)], defaults, scan))
  assert.deepEqual(got, ['192.0.2.10 users:5/60 20'])
})
