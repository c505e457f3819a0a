/**
 * Accounts under attack (decisions/accounts.ts): reported once when
 * minAddresses distinct addresses failed on one account within the period,
 * never otherwise; bounded whatever the attacker sends; the same across runs.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {AccountWatch, accountKey, type AccountAlert} from '../../src/core/decisions/accounts.js'
import {MAX_ACCOUNTS, MAX_WINDOW_ADDRESSES} from '../../src/core/store/bounds.js'
import type {AccountRecord} from '../../src/core/store/schema.js'

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0)
const MIN = 60_000

interface Failure {
  user: string
  ip: string
  time: number
}

/** Brute force: the first failure (in time order) at which some window of periodMs ending there holds n distinct addresses on the account. */
function firstWindow(failures: readonly Failure[], account: string, n: number, periodMs: number): number | null {
  const mine = failures.filter((f) => accountKey(f.user) === account).sort((a, b) => a.time - b.time)
  for (const f of mine) {
    const ips = new Set(mine.filter((g) => g.time <= f.time && g.time >= f.time - periodMs).map((g) => g.ip))
    if (ips.size >= n) return f.time
  }
  return null
}

function run(failures: readonly Failure[], settings = {minAddresses: 5, periodMinutes: 10}, saved: AccountRecord[] = []): {alerts: AccountAlert[]; watch: AccountWatch} {
  const watch = new AccountWatch(saved, settings)
  const alerts: AccountAlert[] = []
  for (const f of failures) {
    const a = watch.add('master', f.user, f.ip, f.time)
    if (a !== null) alerts.push(a)
  }
  return {alerts, watch}
}

const failureArb = fc.record({
  user: fc.constantFrom('alice@example.org', 'Alice@Example.org ', 'bob@example.org', 'carol'),
  ip: fc.nat({max: 11}).map((i) => `203.0.113.${i}`),
  // Within one episode (gaps under the period), at times a window apart.
  time: fc.nat({max: 40 * MIN}).map((t) => T0 + t),
})

test('property: in time order, an account is reported exactly when, and at the failure where, a window first holds minAddresses addresses', () => {
  fc.assert(
    fc.property(fc.array(failureArb, {maxLength: 60}), fc.integer({min: 2, max: 6}), fc.integer({min: 1, max: 15}), (raw, n, minutes) => {
      const failures = [...raw].sort((a, b) => a.time - b.time)
      const {alerts} = run(failures, {minAddresses: n, periodMinutes: minutes})
      for (const account of ['alice@example.org', 'bob@example.org', 'carol']) {
        // One episode unless the account went quiet for a period: compare per episode.
        const mine = failures.filter((f) => accountKey(f.user) === account)
        const episodes: Failure[][] = []
        for (const f of mine) {
          const last = episodes.at(-1)
          if (last === undefined || f.time > (last.at(-1) as Failure).time + minutes * MIN) episodes.push([f])
          else last.push(f)
        }
        const expected = episodes.map((e) => firstWindow(e, account, n, minutes * MIN)).filter((t) => t !== null)
        const got = alerts.filter((a) => a.account === account).map((a) => a.at)
        assert.deepEqual(got, expected, account)
      }
    }),
    {numRuns: 500},
  )
})

test('property: in any order, an account is never reported unless minAddresses addresses really failed on it within one period', () => {
  fc.assert(
    fc.property(fc.array(failureArb, {maxLength: 60}), fc.integer({min: 2, max: 6}), fc.integer({min: 1, max: 15}), (failures, n, minutes) => {
      const {alerts} = run(failures, {minAddresses: n, periodMinutes: minutes})
      for (const a of alerts) {
        const seen = failures.filter((f) => accountKey(f.user) === a.account && f.time <= a.last)
        // Some window of the period holds n distinct addresses of the account.
        const ok = seen.some((f) => new Set(seen.filter((g) => g.time >= f.time && g.time <= f.time + minutes * MIN).map((g) => g.ip)).size >= n)
        assert.ok(ok, `${a.account} reported without ${n} addresses in ${minutes} min`)
      }
      // Reported once per account and episode at most: never twice in a row without a quiet period.
      const keys = alerts.map((a) => a.account)
      for (const k of new Set(keys)) {
        const times = alerts.filter((a) => a.account === k).map((a) => a.first)
        assert.equal(new Set(times).size, times.length)
      }
    }),
    {numRuns: 500},
  )
})

test('40 addresses on one account: reported once, with the count and the times; letter case and spaces do not make it another account', () => {
  const failures: Failure[] = []
  for (let i = 0; i < 40; i++) failures.push({user: i % 2 === 0 ? 'Victim@Example.org' : ' victim@example.org', ip: `198.51.100.${i}`, time: T0 + i * 5000})
  const {alerts} = run(failures, {minAddresses: 20, periodMinutes: 10})
  assert.equal(alerts.length, 1)
  assert.equal(alerts[0]?.account, 'victim@example.org')
  assert.equal(alerts[0]?.addresses, 20)
  assert.equal(alerts[0]?.at, T0 + 19 * 5000)
  assert.equal(alerts[0]?.first, T0)
})

test('the legitimate cases are never reported: an office NAT, a user with three devices, a forgotten password', () => {
  const failures: Failure[] = []
  // An office NAT: one address, typos on many accounts, all day.
  for (let i = 0; i < 500; i++) failures.push({user: `user${i % 50}@example.org`, ip: '192.0.2.10', time: T0 + i * 60_000})
  // Three devices of one user with a stale password, every 5 minutes for a day.
  for (let i = 0; i < 288; i++) failures.push({user: 'dave@example.org', ip: `192.0.2.${20 + (i % 3)}`, time: T0 + i * 300_000})
  // A forgotten password: ten tries from home, then from the phone.
  for (let i = 0; i < 10; i++) failures.push({user: 'erin@example.org', ip: i < 5 ? '192.0.2.30' : '2001:db8::30', time: T0 + i * 20_000})
  const {alerts} = run(failures.sort((a, b) => a.time - b.time), {minAddresses: 5, periodMinutes: 10})
  assert.deepEqual(alerts, [])
})

test('what an attacker sends stays bounded: accounts, addresses per account, name length', () => {
  const failures: Failure[] = []
  for (let i = 0; i < MAX_ACCOUNTS + 3000; i++) failures.push({user: `spray${i}@example.org`, ip: '203.0.113.1', time: T0 + i})
  for (let i = 0; i < 2000; i++) failures.push({user: 'target', ip: `10.${(i >> 8) & 255}.${i & 255}.1`, time: T0 + 100_000 + i})
  failures.push({user: `${'x'.repeat(5000)}`, ip: '203.0.113.2', time: T0 + 200_000})
  const {alerts, watch} = run(failures, {minAddresses: MAX_WINDOW_ADDRESSES, periodMinutes: 60})
  assert.equal(alerts.length, 1)
  assert.equal(alerts[0]?.addresses, MAX_WINDOW_ADDRESSES)
  const saved = watch.save(T0 + 200_000)
  assert.ok(saved.length <= MAX_ACCOUNTS, `${saved.length} accounts kept`)
  assert.ok(saved.every((r) => r.recent.length <= MAX_WINDOW_ADDRESSES && r.account.length <= 64))
})

test('across runs: saved and read back, the next run goes on where the last stopped (no second report, no lost window)', () => {
  const failures: Failure[] = Array.from({length: 12}, (_, i) => ({user: 'alice', ip: `203.0.113.${i}`, time: T0 + i * 10_000}))
  const whole = run(failures, {minAddresses: 8, periodMinutes: 10}).alerts
  const first = run(failures.slice(0, 5), {minAddresses: 8, periodMinutes: 10})
  assert.deepEqual(first.alerts, [])
  const saved = JSON.parse(JSON.stringify(first.watch.save(T0 + 50_000))) as AccountRecord[]
  const second = run(failures.slice(5), {minAddresses: 8, periodMinutes: 10}, saved)
  assert.deepEqual(second.alerts, whole)
  const third = run([{user: 'ALICE', ip: '203.0.113.99', time: T0 + 130_000}], {minAddresses: 8, periodMinutes: 10}, second.watch.save(T0 + 120_000))
  assert.deepEqual(third.alerts, [], 'reported once per attack')
  // A quiet period ends the attack; reported episodes stay listed a week, then go.
  const kept = third.watch.save(T0 + 3 * 86_400_000)
  assert.equal(kept.length, 1)
  assert.deepEqual(kept[0]?.recent, [])
  assert.deepEqual(third.watch.save(T0 + 8 * 86_400_000), [])
})

test('accountAlert.block: a 40-address stuffing run blocks the addresses that failed on the account twice, at the report and as they come after it; once-only addresses and other accounts are not', () => {
  const settings = {minAddresses: 20, periodMinutes: 10, block: true}
  const watch = new AccountWatch([], settings)
  const due: string[] = []
  const take = (): void => {
    for (const b of watch.takeBlocks()) due.push(`${b.ip} ${(b.at - T0) / 1000}`)
  }
  // 40 addresses, one failure each 5 s; every 4th address fails twice in a row; one address fails twice on another account.
  let t = T0
  for (let i = 0; i < 40; i++) {
    const ip = `198.51.100.${i + 1}`
    for (let k = 0; k < (i % 4 === 0 ? 2 : 1); k++) {
      watch.add('master', 'ceo@example.com', ip, (t += 5000))
      take()
    }
    if (i === 3) {
      watch.add('master', 'other', '203.0.113.9', (t += 1000))
      watch.add('master', 'other', '203.0.113.9', (t += 1000))
      take()
    }
  }
  // The 20th address completes the window at its failure; those that had failed twice by then are due at once.
  const reportAt = due[0]?.split(' ')[1]
  assert.deepEqual(
    due.filter((d) => d.endsWith(` ${reportAt}`)).map((d) => d.split(' ')[0]),
    ['198.51.100.1', '198.51.100.5', '198.51.100.9', '198.51.100.13', '198.51.100.17'],
  )
  // After the report, each later twice-failing address is due at its second failure, once.
  assert.deepEqual(
    due.slice(5).map((d) => d.split(' ')[0]),
    ['198.51.100.21', '198.51.100.25', '198.51.100.29', '198.51.100.33', '198.51.100.37'],
  )
  assert.ok(!due.some((d) => d.startsWith('203.0.113.9')), 'another account is another window')
  // Across a save: an address's first failure before it, its second after, is due.
  const saved = watch.save(t)
  const next = new AccountWatch(saved, settings)
  next.add('master', 'ceo@example.com', '198.51.100.2', t + 1000)
  assert.deepEqual(next.takeBlocks().map((b) => b.ip), ['198.51.100.2'])
  // Without block: true nothing is ever due.
  const quiet = new AccountWatch([], {minAddresses: 2, periodMinutes: 10})
  for (const ip of ['192.0.2.1', '192.0.2.1', '192.0.2.2', '192.0.2.2']) quiet.add('master', 'a', ip, (t += 1000))
  assert.deepEqual(quiet.takeBlocks(), [])
})
