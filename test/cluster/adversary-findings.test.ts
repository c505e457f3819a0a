/**
 * Adversarial review of the cluster mode (issue 15): each test here states a
 * bug found in review and fails for that reason (NOTES-adversary.md). Three
 * nodes a, b, c on one redis-server, firewall backend none
 * (test/helpers/cluster-nodes.ts).
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {appendLines, at, f2, requireRoot, tempDir} from '../helpers/env.js'
import {requireRedis, startRedis} from '../helpers/redis.js'
import {blockedOn, hacks, listed, nodes} from '../helpers/cluster-nodes.js'

const ready = (t: TestContext): boolean => requireRoot(t) && requireRedis(t)

test('A1: a window one node completes alone is one block: one "blocked" line, rcguard_blocks_total 1 (not the Decider\'s block and the cluster\'s claim of the same)', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const prom = join(tempDir(t, 'rcguard-adv-metrics-'), 'rcguard.prom')
  const [a] = nodes(t, redis, {metrics: {textfile: prom}})
  assert.ok(a)
  appendLines(a.log, Array.from({length: 6}, (_, i) => f2(at(0, i * 10), '203.0.113.10', 'q')))
  const r = await hacks(a, at(1, 0).toISOString())
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('blocked 203.0.113.10 '))
  assert.equal(lines.length, 1, `one block, told once:\n${r.stdout}`)
  const j = await a.run(['hacks', '--json'], at(1, 0).toISOString()) // nothing new: a no-op run
  assert.equal(j.exitCode, 0)
  assert.match(readFileSync(prom, 'utf8'), /^rcguard_blocks_total\{instance="master",reason="failures"\} 1$/m, 'one block made, counted once')
})

test('A1b: --json newlyBlocked holds the block once', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a] = nodes(t, redis)
  assert.ok(a)
  appendLines(a.log, Array.from({length: 6}, (_, i) => f2(at(0, i * 10), '203.0.113.11', 'q')))
  const r = await a.run(['hacks', '--json'], at(1, 0).toISOString())
  assert.equal(r.exitCode, 0, r.stderr)
  const out = JSON.parse(r.stdout) as {newlyBlocked: {ip: string}[]}
  assert.deepEqual(out.newlyBlocked.map((b) => b.ip), ['203.0.113.11'])
})

test('A2: one block record in Redis that is not JSON is skipped (one warning), not a script error that cuts the node off the cluster for every address', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b] = nodes(t, redis)
  assert.ok(a && b)
  assert.equal((await redis.cli(['HSET', 'rcguard:b:master', '203.0.113.20', 'not json'])).exitCode, 0)
  // 3 + 3 failures of another address, and 6 of the planted one, on a and b.
  appendLines(a.log, [...Array.from({length: 3}, (_, i) => f2(at(0, i * 10), '203.0.113.21', 'q')), ...Array.from({length: 6}, (_, i) => f2(at(0, 30 + i), '203.0.113.20', 'q'))])
  appendLines(b.log, Array.from({length: 3}, (_, i) => f2(at(1, i * 10), '203.0.113.21', 'q')))
  const now = at(2, 0).toISOString()
  const ra = await a.run(['hacks'], now)
  assert.equal(ra.exitCode, 0, ra.stderr)
  assert.doesNotMatch(ra.stderr, /on this node alone/, `Redis answered: the run is not this node's alone:\n${ra.stderr}`)
  const rb = await b.run(['hacks'], now)
  assert.match(rb.stdout, /blocked 203\.0\.113\.21 /, `3 on a + 3 on b: a's failures reached Redis:\n${rb.stdout}${rb.stderr}`)
})

test('A2b: a successes hash value that is not a number does not make every push of successes a script error', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a] = nodes(t, redis, {windows: [{maxAttempts: 20, periodMinutes: 60}]})
  assert.ok(a)
  assert.equal((await redis.cli(['HSET', 'rcguard:s:master', '203.0.113.22', 'soon'])).exitCode, 0)
  appendLines(a.log, [`[25-Nov-2026 13:00:00 +0000]: <t9000001> Successful login for q (ID: 1) from 203.0.113.22 in session t9000001abcdefgh`])
  const r = await a.run(['hacks'], at(1, 0).toISOString())
  assert.equal(r.exitCode, 0, r.stderr)
  assert.doesNotMatch(r.stderr, /on this node alone/, r.stderr)
})

test('A3: members planted in an account\'s set in Redis are checked: a member naming no address never becomes an entry (the database write is refused at every run after: exit 4)', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a] = nodes(t, redis, {accountAlert: {minAddresses: 3, periodMinutes: 60, block: true}})
  assert.ok(a)
  // The account "victim" (sha256 → 1bdd5b5b92e2d9f3): two failures of "not-an-address" on it.
  const key = 'rcguard:a:master:1bdd5b5b92e2d9f3'
  const t0 = at(0, 0).getTime()
  assert.equal((await redis.cli(['ZADD', key, String(t0), 'x:1|not-an-address', String(t0 + 1000), 'x:2|not-an-address'])).exitCode, 0)
  appendLines(a.log, [f2(at(0, 10), '203.0.113.30', 'victim'), f2(at(0, 15), '203.0.113.31', 'victim')])
  const r1 = await a.run(['hacks'], at(1, 0).toISOString())
  assert.equal(r1.exitCode, 0, r1.stderr)
  appendLines(a.log, Array.from({length: 6}, (_, i) => f2(at(1, i * 5), '203.0.113.32', 'other')))
  const r2 = await a.run(['hacks'], at(2, 0).toISOString())
  assert.equal(r2.exitCode, 0, r2.stderr)
  assert.ok(await blockedOn(a, '203.0.113.32', at(2, 0).toISOString()), 'the node still blocks')
})

test('A4: unblock on a node that has not run since another node made the block (list there shows it) lifts it on the cluster', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b, c] = nodes(t, redis)
  assert.ok(a && b && c)
  appendLines(c.log, Array.from({length: 6}, (_, i) => f2(at(0, i * 10), '203.0.113.40', 'q')))
  const t0 = at(1, 0).toISOString()
  await hacks(c, t0)
  await hacks(b, t0)
  assert.ok(await blockedOn(a, '203.0.113.40', t0), 'list on a shows the cluster\'s block')
  const u = await a.run(['unblock', '203.0.113.40'], t0)
  assert.equal(u.exitCode, 0, `unblock on a: ${u.stdout}${u.stderr}`)
  const t1 = at(2, 0).toISOString()
  for (const n of [b, c, a]) await hacks(n, t1)
  for (const n of [a, b, c]) assert.equal(await blockedOn(n, '203.0.113.40', t1), undefined, `${n.name} still holds the block unblocked on a`)
})

test('A5: whitelist --remove on a node that has not yet taken the entry in removes it from the cluster', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b] = nodes(t, redis)
  assert.ok(a && b)
  const t0 = at(0, 0).toISOString()
  assert.equal((await a.run(['whitelist', '198.51.100.0/24'], t0)).exitCode, 0)
  const r = await b.run(['whitelist', '--remove', '198.51.100.0/24'], t0)
  assert.equal(r.exitCode, 0, `${r.stdout}${r.stderr}`)
  for (const n of [a, b]) await hacks(n, at(1, 0).toISOString())
  for (const n of [a, b]) assert.ok(!(await listed(n, at(1, 0).toISOString())).some((e) => e.ip === '198.51.100.0/24' && e.state === 'whitelisted'), `${n.name}: removed on b, still whitelisted`)
})

test('A6: flush --cluster removes only its own keys: not those of another cluster whose prefix starts with this one\'s', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a] = nodes(t, redis) // prefix rcguard:
  const [s] = nodes(t, redis, {}).map((n) => n)
  assert.ok(a && s)
  // A second cluster on the same Redis, prefix rcguard:staging:.
  const cfg = JSON.parse(readFileSync(s.config, 'utf8')) as {cluster: Record<string, unknown>}
  cfg.cluster.prefix = 'rcguard:staging:'
  const {writeFileSync} = await import('node:fs')
  writeFileSync(s.config, JSON.stringify(cfg), {mode: 0o600})
  const t0 = at(0, 0).toISOString()
  assert.equal((await s.run(['block', '203.0.113.50'], t0)).exitCode, 0)
  const before = (await redis.keys()).filter((k) => k.startsWith('rcguard:staging:'))
  assert.ok(before.length > 0)
  const r = await a.run(['flush', '--cluster', '--yes'], at(1, 0).toISOString())
  assert.equal(r.exitCode, 0, r.stderr)
  assert.deepEqual((await redis.keys()).filter((k) => k.startsWith('rcguard:staging:')), before, 'the other cluster\'s keys are untouched')
})

test('A7: unblock on one node forgets the address on every node: the failures another node still keeps of it do not count towards its next block', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b, c] = nodes(t, redis, {maxAttempts: 10})
  assert.ok(a && b && c)
  // 5 failures on c and 1 on a: 6 in the cluster, not 10.
  appendLines(c.log, Array.from({length: 5}, (_, i) => f2(at(0, i * 10), '203.0.113.60', 'q')))
  appendLines(a.log, [f2(at(0, 55), '203.0.113.60', 'q')])
  const t0 = at(1, 0).toISOString()
  await hacks(c, t0)
  await hacks(a, t0)
  const u = await a.run(['unblock', '203.0.113.60'], at(1, 10).toISOString())
  assert.equal(u.exitCode, 0, u.stderr)
  await hacks(c, at(1, 20).toISOString())
  // 5 new failures on c after the unblock: the first 5 of the address, not 10.
  appendLines(c.log, Array.from({length: 5}, (_, i) => f2(at(1, 30 + i * 5), '203.0.113.60', 'q')))
  const t1 = at(2, 0).toISOString()
  const r = await hacks(c, t1)
  assert.doesNotMatch(r.stdout, /blocked 203\.0\.113\.60 /, 'c counted the failures from before the unblock on a')
  for (const n of [a, b]) await hacks(n, t1)
  for (const n of [a, b, c]) assert.equal(await blockedOn(n, '203.0.113.60', t1), undefined, `${n.name}: blocked by 5 failures after the unblock`)
})
