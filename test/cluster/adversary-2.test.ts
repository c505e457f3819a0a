/**
 * Second adversarial review of the cluster mode (issue 15): the interplay of
 * each node's own Decider with the cluster's windows, successes, expiry and
 * SAME_MS. Each test states a bug and fails for that reason
 * (NOTES-adversary-2.md). The reference is one host reading every node's
 * lines. Three nodes a, b, c on one redis-server, firewall backend none
 * (test/helpers/cluster-nodes.ts).
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {appendLines, at, f2, fileDate, requireRoot} from '../helpers/env.js'
import {requireRedis, startRedis} from '../helpers/redis.js'
import {blockedOn, hacks, listed, nodes} from '../helpers/cluster-nodes.js'

const ready = (t: TestContext): boolean => requireRoot(t) && requireRedis(t)

let sessions = 0
/** A 1.6-style successful login line. */
function ok(d: Date, ip: string, user = 'alice@example.com'): string {
  sessions++
  const sp = `s${String(sessions).padStart(7, '0')}`
  return `${fileDate(d)}: <${sp}> Successful login for ${user} (ID: 1) from ${ip} in session ${sp}abcdefgh`
}

test('B1: resetOnSuccess: failures a success forgot on this node still count in the cluster (3 failures, a success, 3 failures on ONE node is blocked by maxAttempts 5)', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a] = nodes(t, redis, {maxAttempts: 5, periodMinutes: 10, resetOnSuccess: true, windows: []})
  assert.ok(a)
  const ip = '203.0.113.50'
  appendLines(a.log, [f2(at(0, 0), ip, 'q'), f2(at(0, 10), ip, 'q'), f2(at(0, 20), ip, 'q'), ok(at(0, 30), ip, 'q'), f2(at(0, 40), ip, 'q'), f2(at(0, 50), ip, 'q'), f2(at(1, 0), ip, 'q')])
  const r = await hacks(a, at(2, 0).toISOString())
  // One host: 3 failures, the success forgets them, 3 more: fewer than 5, no block. The node's own Decider agrees;
  // the cluster's window (evaluate.ts) counts all 6 members of the sorted set.
  assert.doesNotMatch(r.stdout, /blocked 203\.0\.113\.50/, `resetOnSuccess forgot the first 3 failures:\n${r.stdout}`)
  assert.equal(await blockedOn(a, ip, at(2, 0).toISOString()), undefined)
})

test('B1b: resetOnSuccess across nodes: a success on node b does not forget the failures a and c counted', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b, c] = nodes(t, redis, {maxAttempts: 5, periodMinutes: 10, resetOnSuccess: true, windows: []})
  assert.ok(a && b && c)
  const ip = '203.0.113.51'
  appendLines(a.log, [f2(at(0, 0), ip, 'q'), f2(at(0, 10), ip, 'q'), f2(at(0, 20), ip, 'q')])
  await hacks(a, at(0, 25).toISOString())
  appendLines(b.log, [ok(at(0, 30), ip, 'q')])
  await hacks(b, at(0, 35).toISOString())
  appendLines(c.log, [f2(at(0, 40), ip, 'q'), f2(at(0, 50), ip, 'q'), f2(at(1, 0), ip, 'q')])
  const r = await hacks(c, at(2, 0).toISOString())
  assert.doesNotMatch(r.stdout, /blocked 203\.0\.113\.51/, `one host: 3, reset, 3: no block:\n${r.stdout}`)
})

test('B2: a success on node b does not relax the windows of failures node a counts alone: a\'s own Decider blocks by failures:5/60 (one host: relaxed)', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b] = nodes(t, redis, {maxAttempts: 10, periodMinutes: 10, windows: [{maxAttempts: 5, periodMinutes: 60}]})
  assert.ok(a && b)
  const ip = '203.0.113.52'
  // One host reading these lines (13:01 failure, 13:02 success, 13:04..13:13 four failures) blocks nothing: the
  // success (after the address was counted against) relaxes failures:5/60. Here the success is on b.
  appendLines(a.log, [f2(at(1), ip)])
  await hacks(a, at(1, 30).toISOString())
  appendLines(b.log, [ok(at(2), ip)])
  await hacks(b, at(2, 30).toISOString())
  appendLines(a.log, [f2(at(4), ip), f2(at(7), ip), f2(at(10), ip), f2(at(13), ip)])
  const r = await hacks(a, at(14).toISOString())
  assert.doesNotMatch(r.stdout, /blocked 203\.0\.113\.52/, `b's success relaxes failures:5/60 in the cluster too:\n${r.stdout}`)
})

test('B3: an escalated block made by a node\'s own Decider is told (stdout, --json newlyBlocked) with the unescalated end the cluster then overrides', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b] = nodes(t, redis, {maxAttempts: 5, periodMinutes: 10, blockMinutes: 10, windows: []})
  assert.ok(a && b)
  const ip = '203.0.113.53'
  appendLines(a.log, Array.from({length: 5}, (_, i) => f2(at(0, i), ip, 'q')))
  await hacks(a, at(1).toISOString()) // block 1: 13:00:04 → 13:10:04
  // b never ran during it. At 13:20 its own lines block the address again: the second block (factor 2: 20 min).
  appendLines(b.log, Array.from({length: 5}, (_, i) => f2(at(20, i), ip, 'q')))
  const r = await b.run(['hacks', '--json'], at(21).toISOString())
  assert.equal(r.exitCode, 0, r.stderr)
  const told = (JSON.parse(r.stdout) as {newlyBlocked: {ip: string; blockedUntil: string | null}[]}).newlyBlocked.find((x) => x.ip === ip)
  const held = await blockedOn(b, ip, at(21).toISOString())
  assert.ok(told && held, `blocked and held:\n${r.stdout}`)
  assert.equal(held.blockedUntil, at(40, 4).toISOString(), 'the cluster holds the escalated block (2nd: 20 min)')
  assert.equal(told.blockedUntil, held.blockedUntil, 'the run tells the block it made as the cluster holds it')
})

test('B4: SAME_MS takes a new block within 60 s of an ended one for the same block: never pushed, so the other nodes never hold it (and escalation loses it)', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b, c] = nodes(t, redis, {maxAttempts: 5, periodMinutes: 10, blockMinutes: 0.5, windows: []})
  assert.ok(a && b && c)
  const ip = '203.0.113.54'
  // b: block 1 at 13:00:04, 30 s, ends 13:00:34.
  appendLines(b.log, Array.from({length: 5}, (_, i) => f2(at(0, i), ip, 'q')))
  await hacks(b, at(0, 10).toISOString())
  // a (not run since): five failures after that end, 13:00:40..44: block 2, made by a's own Decider at 13:00:44.
  appendLines(a.log, Array.from({length: 5}, (_, i) => f2(at(0, 40 + i), ip, 'q')))
  const r = await hacks(a, at(0, 50).toISOString())
  assert.match(r.stdout, /blocked 203\.0\.113\.54/, r.stdout)
  // One host: block 2 at 13:00:44, escalated to 1 min (ends 13:01:44), on every node.
  const now = at(0, 55).toISOString()
  await hacks(c, now)
  const onA = await blockedOn(a, ip, now)
  const onC = await blockedOn(c, ip, now)
  assert.ok(onA, 'a holds its block')
  assert.ok(onC, `c holds the block a made (Redis: ${(await redis.cli(['HGET', 'rcguard:b:master', ip])).stdout})`)
})

test('B4b: (same cause) the block a node made alone keeps its unescalated end: the second block lasts blockMinutes, not blockMinutes x factor', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b] = nodes(t, redis, {maxAttempts: 5, periodMinutes: 10, blockMinutes: 0.5, windows: []})
  assert.ok(a && b)
  const ip = '203.0.113.55'
  appendLines(b.log, Array.from({length: 5}, (_, i) => f2(at(0, i), ip, 'q')))
  await hacks(b, at(0, 10).toISOString())
  appendLines(a.log, Array.from({length: 5}, (_, i) => f2(at(0, 40 + i), ip, 'q')))
  await hacks(a, at(0, 50).toISOString())
  const onA = await blockedOn(a, ip, at(0, 55).toISOString())
  assert.ok(onA)
  assert.equal(onA.blockedUntil, at(1, 44).toISOString(), 'block 2 of the address: 0.5 min × 2')
})

test('B5: list on two nodes of one cluster state agrees (the block a node made alone within SAME_MS of an ended cluster block)', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b] = nodes(t, redis, {maxAttempts: 5, periodMinutes: 10, blockMinutes: 0.5, windows: []})
  assert.ok(a && b)
  const ip = '203.0.113.56'
  appendLines(b.log, Array.from({length: 5}, (_, i) => f2(at(0, i), ip, 'q')))
  await hacks(b, at(0, 10).toISOString())
  appendLines(a.log, Array.from({length: 5}, (_, i) => f2(at(0, 40 + i), ip, 'q')))
  await hacks(a, at(0, 50).toISOString())
  const now = at(0, 55).toISOString()
  const la = (await listed(a, now)).filter((e) => e.state === 'blocked').map((e) => e.ip)
  const lb = (await listed(b, now)).filter((e) => e.state === 'blocked').map((e) => e.ip)
  assert.deepEqual(lb, la, 'the same cluster, the same blocks listed')
})

test('H6 (holds): ipv6Prefix 64: failures of two addresses of one /64 on two nodes block the /64 on all; unblock of an address of it on a third node lifts it everywhere', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b, c] = nodes(t, redis, {maxAttempts: 5, periodMinutes: 10, windows: [], firewall: {backend: 'none', ipv6Prefix: 64}})
  assert.ok(a && b && c)
  appendLines(a.log, [f2(at(0, 0), '2001:db8:1:2::1', 'q'), f2(at(0, 10), '2001:db8:1:2::1', 'q'), f2(at(0, 20), '2001:db8:1:2::1', 'q')])
  await hacks(a, at(0, 30).toISOString())
  appendLines(b.log, [f2(at(0, 40), '2001:db8:1:2::2', 'q'), f2(at(0, 50), '2001:db8:1:2::2', 'q')])
  const r = await hacks(b, at(1).toISOString())
  assert.match(r.stdout, /blocked 2001:db8:1:2::\/64/, r.stdout)
  await hacks(c, at(1, 10).toISOString())
  assert.ok(await blockedOn(c, '2001:db8:1:2::/64', at(1, 20).toISOString()))
  const u = await c.run(['unblock', '2001:db8:1:2::7'], at(1, 30).toISOString())
  assert.equal(u.exitCode, 0, u.stdout + u.stderr)
  await hacks(a, at(1, 40).toISOString())
  assert.equal(await blockedOn(a, '2001:db8:1:2::/64', at(1, 50).toISOString()), undefined)
  assert.equal(await blockedOn(b, '2001:db8:1:2::/64', at(1, 50).toISOString()), undefined)
  // Two more failures on a after the unblock: not enough (the unblock forgot the earlier ones everywhere).
  appendLines(a.log, [f2(at(2, 0), '2001:db8:1:2::1', 'q'), f2(at(2, 10), '2001:db8:1:2::1', 'q')])
  const r2 = await hacks(a, at(2, 20).toISOString())
  assert.doesNotMatch(r2.stdout, /blocked/, r2.stdout)
})

test('H7 (holds): block --minutes 0 on b while a holds its own automatic block: every node holds it until deleted', async (t) => {
  if (!ready(t)) return
  const redis = await startRedis(t)
  const [a, b, c] = nodes(t, redis, {maxAttempts: 5, periodMinutes: 10, blockMinutes: 10, windows: []})
  assert.ok(a && b && c)
  const ip = '203.0.113.57'
  appendLines(a.log, Array.from({length: 5}, (_, i) => f2(at(0, i), ip, 'q')))
  await hacks(a, at(0, 10).toISOString())
  const k = await b.run(['block', ip, '--minutes', '0'], at(0, 20).toISOString())
  assert.equal(k.exitCode, 0, k.stderr)
  await hacks(a, at(0, 30).toISOString())
  await hacks(c, at(0, 30).toISOString())
  for (const n of [a, b, c]) assert.equal((await blockedOn(n, ip, at(30).toISOString()))?.blockedUntil, null, n.name)
})
