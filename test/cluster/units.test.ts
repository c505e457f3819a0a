/**
 * The cluster's pieces that need no Redis: the URL of cluster.redis (every
 * form, and the password never in what is printed, nor in a refusal), and
 * the windows over a key's cluster failures against a brute-force statement
 * of the rule.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {parseRedisUrl, shownTarget} from '../../src/core/cluster/config.js'
import {clusterWindow, memberOf, tagOfMember} from '../../src/core/cluster/evaluate.js'
import {validateConfig} from '../../src/core/config/config.js'
import {windowsOf} from '../../src/core/decisions/windows.js'
import {params} from '../helpers/property.js'

test('cluster.redis: redis://, rediss://, unix:// with their parts; what is shown never holds the password', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['redis://10.0.0.5', {host: '10.0.0.5', port: 6379, db: 0, tls: false}, 'redis://10.0.0.5:6379/0'],
    ['redis://:s3cr%2Ft@cache:6380/2', {host: 'cache', port: 6380, db: 2, password: 's3cr/t'}, 'redis://:***@cache:6380/2'],
    ['rediss://rc:pw@[2001:db8::5]:6390/1', {host: '2001:db8::5', tls: true, username: 'rc', password: 'pw'}, 'rediss://rc:***@[2001:db8::5]:6390/1'],
    ['unix:///run/redis/redis.sock?db=3&password=p%26w', {path: '/run/redis/redis.sock', db: 3, password: 'p&w'}, 'unix:///run/redis/redis.sock (db 3)'],
  ]
  for (const [url, want, shown] of cases) {
    const t = parseRedisUrl(url)
    assert.ok(typeof t !== 'string', `${url}: ${String(t)}`)
    for (const [k, v] of Object.entries(want)) assert.deepEqual((t as unknown as Record<string, unknown>)[k], v, `${url} ${k}`)
    assert.equal(shownTarget(t), shown)
  }
  for (const bad of ['http://x', 'redis://', 'redis://h/x', 'redis://h:6379/0?a=1', 'unix://host/sock', 'unix:///run/', 'unix:///s?pass=1', 'not a url']) {
    assert.equal(typeof parseRedisUrl(bad), 'string', bad)
  }
})

test('a refused cluster.redis names the problem, never the URL (it may hold a password)', () => {
  const secret = 'Hunter2-very-secret'
  for (const url of [`redis://:${secret}@host/x`, `http://:${secret}@host`, `unix://:${secret}@/run/redis.sock`]) {
    assert.throws(
      () => validateConfig({cluster: {redis: url}}, 'test.yml', '/'),
      (err: Error) => err.message.startsWith('invalid configuration in test.yml: cluster.redis: ') && !err.message.includes(secret),
    )
  }
  const ok = validateConfig({cluster: {redis: `redis://:${secret}@host/1`}}, 'test.yml', '/')
  assert.match(ok.cluster?.node ?? '', /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'node defaults to a valid name')
  assert.equal(ok.cluster?.prefix, 'rcguard:')
})

test('a member carries its tag; one of another shape has none (it can only lower a count)', () => {
  assert.equal(tagOfMember(memberOf('a:1.2:o99', 0xbeef)), 0xbeef)
  assert.equal(tagOfMember('a:1.2:o99'), 0)
  assert.equal(tagOfMember('x|zz12'), 0)
})

/** Brute force: the earliest failure time T such that some window completes at T, by each rule's own statement. */
function reference(times: number[], tags: number[], fresh: Set<number>, maxAttempts: number, periodMs: number, users: {count: number; periodMs: number} | null): number | null {
  let best: number | null = null
  const take = (t: number) => {
    if (best === null || t < best) best = t
  }
  // First rule: any maxAttempts failures within periodMs (first to last).
  for (let j = maxAttempts - 1; j < times.length; j++) if ((times[j] as number) - (times[j - maxAttempts + 1] as number) <= periodMs) take(times[j] as number)
  if (users !== null) {
    // Users: a window [t - p, t] ending at a failure t, holding a fresh failure, with count distinct non-zero tags.
    for (let e = 0; e < times.length; e++) {
      const t = times[e] as number
      const inside = times.map((x, i) => i).filter((i) => (times[i] as number) >= t - users.periodMs && i <= e)
      if (!inside.some((i) => fresh.has(i))) continue
      const names = new Set(inside.map((i) => tags[i]).filter((g) => g !== 0))
      if (names.size >= users.count) take(t)
    }
  }
  return best
}

test('clusterWindow finds the earliest window over all nodes\' failures, as the rules state it (brute force)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({t: fc.integer({min: 0, max: 40}), g: fc.integer({min: 0, max: 4}), fresh: fc.boolean()}), {maxLength: 14}),
      fc.integer({min: 2, max: 5}),
      fc.integer({min: 2, max: 4}),
      (raw, maxAttempts, maxUsers) => {
        const sorted = raw.map((r) => ({...r, t: r.t * 60_000})).sort((a, b) => a.t - b.t || a.g - b.g)
        const times = sorted.map((r) => r.t)
        const tags = sorted.map((r) => r.g)
        const fresh = sorted.flatMap((r, i) => (r.fresh ? [i] : []))
        const windows = windowsOf({maxAttempts, periodMinutes: 10, windows: [{maxUsers, periodMinutes: 15}]})
        const got = clusterWindow(windows, {times, tags}, fresh, -Infinity, null)
        const want = fresh.length === 0 ? null : reference(times, tags, new Set(fresh), maxAttempts, 600_000, {count: maxUsers, periodMs: 900_000})
        assert.equal(got?.at ?? null, want)
      },
    ),
    params(15, 400),
  )
})

test('clusterWindow: failures up to the end of the last block never count; a success nearby relaxes all windows but the first', () => {
  const windows = windowsOf({maxAttempts: 6, periodMinutes: 10, windows: [{maxAttempts: 8, periodMinutes: 60}]})
  const times = [0, 1, 2, 3, 4, 5].map((m) => m * 60_000)
  const tags = times.map(() => 1)
  assert.equal(clusterWindow(windows, {times, tags}, [5], -Infinity, null)?.rule, 'failures:6/10')
  assert.equal(clusterWindow(windows, {times, tags}, [5], 2 * 60_000, null), null, 'three of them came while it was blocked')
  const slow = Array.from({length: 8}, (_, i) => i * 7 * 60_000)
  assert.equal(clusterWindow(windows, {times: slow, tags: slow.map(() => 1)}, [7], -Infinity, null)?.rule, 'failures:8/60')
  assert.equal(clusterWindow(windows, {times: slow, tags: slow.map(() => 1)}, [7], -Infinity, 40 * 60_000), null, 'a success within the hour relaxes it')
})
