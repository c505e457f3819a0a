/**
 * Cluster mode (issue 15) with Redis over TCP: a redis-server with a
 * password (`--port 6379 --bind …`) in a network namespace of its own, and
 * two nodes a and b (backend none) in namespaces of theirs, each joined to
 * Redis's by a veth pair (198.51.100.0/24 for a, 192.0.2.0/24 for b), with
 * `cluster.redis: redis://:PASSWORD@ADDRESS:6379/0` and `timeoutSeconds: 1`.
 *
 * - Redis unreachable: iptables in a's namespace DROPs what a sends to
 *   Redis's address, so its packets vanish (a timeout, not a refusal).
 *   hacks on a exits 0 within 6 s (3.3 s seen: the 1 s timeout, then 2 s
 *   of ioredis's disconnect timer), with one warning line that names Redis
 *   and a timeout (never a refusal, never the password), twice in a row; an
 *   admin command (block) exits 8 and changes nothing. The failures a counted meanwhile are pushed once the
 *   rule is removed: 3 on a during the outage + 3 on b after it block the
 *   address on both nodes, 3 + 2 do not (Redis holds its 5 failures once each).
 * - A wrong password over TCP: hacks exits 0 with one warning that names the
 *   refusal (WRONGPASS) and neither password; block exits 8.
 *
 * Needs root (namespaces, iptables) and redis-server; skips without them and
 * fails under CI=true.
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {appendLines, at, f2, netns, requireRoot, STACK} from '../helpers/env.js'
import {linkPair, sh} from '../helpers/packets.js'
import {requireRedis} from '../helpers/redis.js'
import {blockedOn, clusterWarning, errLines, runNode, tcpRedis, trialNode, type RunResult, type TrialNode} from '../helpers/cluster-trials.js'

const REDIS_A = '198.51.100.1'
const NODE_A = '198.51.100.2'
const REDIS_B = '192.0.2.1'
const NODE_B = '192.0.2.2'
/** 3 failures on a during the outage, 3 on b after it: blocked. */
const X = '203.0.113.20'
/** 3 on a during the outage, 2 on b after it: 5, not blocked. */
const Y = '203.0.113.30'

const ready = (t: TestContext): boolean => requireRoot(t) && requireRedis(t)

interface Tcp {
  password: string
  redis: Awaited<ReturnType<typeof tcpRedis>>
  a: TrialNode
  b: TrialNode
  nsA: string
  /** Every command run and what it printed. */
  transcript: string[]
  run: (node: TrialNode, args: string[], min: number) => Promise<RunResult>
}

async function tcpWorld(t: TestContext): Promise<Tcp> {
  const password = `Pw${randomBytes(9).toString('hex')}Zq`
  const r = await netns(t)
  const na = await netns(t)
  const nb = await netns(t)
  const stem = `rc${r.name.slice(-6)}`
  await linkPair(`${stem}a`, {ns: r.name, v4: REDIS_A, v6: '2001:db8:51::1'}, {ns: na.name, v4: [NODE_A], v6: []})
  await linkPair(`${stem}b`, {ns: r.name, v4: REDIS_B, v6: '2001:db8:52::1'}, {ns: nb.name, v4: [NODE_B], v6: []})
  for (const ns of [na.name, nb.name]) await sh(ns, ['ip', 'link', 'set', 'lo', 'up'])
  const redis = await tcpRedis(t, r.name, [REDIS_A, REDIS_B], password)
  const a = trialNode(t, 'a', {redis: `redis://:${password}@${REDIS_A}:6379/0`, node: 'a', timeoutSeconds: 1}, na.name)
  const b = trialNode(t, 'b', {redis: `redis://:${password}@${REDIS_B}:6379/0`, node: 'b', timeoutSeconds: 1}, nb.name)
  const transcript: string[] = []
  const run = async (node: TrialNode, args: string[], min: number): Promise<RunResult> => {
    const out = await runNode(node, args, min)
    transcript.push(`$ [${node.name} @${min}] rcguard ${args.join(' ')} -> ${out.exitCode} (${Math.round(out.ms)} ms)\n${out.stdout}\n${out.stderr}`)
    return out
  }
  for (const n of [a, b]) {
    const first = await run(n, ['hacks'], -1)
    assert.deepEqual([first.exitCode, errLines(first)], [0, []], `the first run on ${n.name} reaches Redis over TCP:\n${first.stderr}`)
  }
  return {password, redis, a, b, nsA: na.name, transcript, run}
}

/** hacks that must reach Redis: exit 0, nothing on stderr. */
async function clean(w: Tcp, node: TrialNode, min: number, what: string): Promise<RunResult> {
  const r = await w.run(node, ['hacks'], min)
  assert.deepEqual([r.exitCode, errLines(r)], [0, []], `hacks on ${node.name} at minute ${min} (${what}):\n${r.stderr}`)
  return r
}

const blockedLine = (r: RunResult, ip: string): string[] => r.stdout.split('\n').filter((l) => l.startsWith(`blocked ${ip} `))

test('Redis over TCP dropped by iptables: hacks exits 0 within 6 s with one warning (no password); the outage\'s failures are pushed once when the rule goes (3 + 3 blocks, 3 + 2 does not)', async (t) => {
  if (!ready(t)) return
  const w = await tcpWorld(t)
  const drop = ['OUTPUT', '-d', `${REDIS_A}/32`, '-j', 'DROP']
  await sh(w.nsA, ['iptables', '-w', '5', '-A', ...drop])
  let dropped = true
  t.after(async () => {
    if (dropped) await sh(w.nsA, ['iptables', '-w', '5', '-D', ...drop]).catch(() => undefined)
  })

  appendLines(w.a.log, [...[0, 10, 20].map((s) => f2(at(1, s), X)), ...[30, 40, 50].map((s) => f2(at(1, s), Y))])
  const lines: string[] = []
  for (const min of [2, 2.5]) {
    const r = await w.run(w.a, ['hacks'], min)
    assert.equal(r.exitCode, 0, `hacks on a with Redis dropped exits 0:\n${r.stderr}`)
    assert.ok(!r.timedOut && r.ms < 6_000, `hacks on a with Redis dropped (timeoutSeconds 1) ends within 6 s: it took ${Math.round(r.ms)} ms`)
    const warning = clusterWarning(r)
    assert.ok(!('problem' in warning), `hacks on a at minute ${min} with Redis dropped: ${'problem' in warning ? warning.problem : ''}`)
    lines.push(warning.line)
    assert.doesNotMatch(warning.line, /ECONNREFUSED|refused/i, `the packets vanish: a timeout, not a refusal: ${warning.line}`)
    assert.ok(!warning.line.includes(w.password), `the warning does not contain the password: ${warning.line}`)
    assert.deepEqual(blockedLine(r, X), [], '3 failures are no block')
  }
  assert.match(lines[1] as string, /6 failure\(s\) wait/, `the second run still has the 6 failures waiting: ${lines[1]}`)

  // An admin command needs Redis: status 8, nothing changed (and nothing blocked on a).
  const blk = await w.run(w.a, ['block', '203.0.113.99'], 2.75)
  assert.equal(blk.exitCode, 8, `block with Redis dropped exits 8:\n${blk.stderr}${blk.stdout}`)
  assert.doesNotMatch(`${blk.stdout}\n${blk.stderr}`, STACK)
  assert.ok(!(await blockedOn(w.a, 2.75)).has('203.0.113.99'), 'the failed block changed nothing')

  await sh(w.nsA, ['iptables', '-w', '5', '-D', ...drop])
  dropped = false
  await clean(w, w.a, 3, 'the rule removed: pushes the outage\'s 6 failures')
  await clean(w, w.a, 3.5, 'nothing new: pushes nothing')
  const zcard = async (ip: string): Promise<string> => (await w.redis.cli(['zcard', `rcguard:f:master:${ip}`])).stdout.trim()
  assert.deepEqual([await zcard(X), await zcard(Y)], ['3', '3'], 'Redis holds the 3 + 3 failures a counted during the outage, once each')

  appendLines(w.b.log, [...[0, 10, 20].map((s) => f2(at(4, s), X)), ...[30, 40].map((s) => f2(at(4, s), Y))])
  const rb = await clean(w, w.b, 5, 'b\'s own 3 + 2')
  assert.equal(blockedLine(rb, X).length, 1, `b blocks ${X}: 3 on a during the outage + 3 on b:\n${rb.stdout}`)
  assert.deepEqual(blockedLine(rb, Y), [], `b does not block ${Y}: 3 + 2:\n${rb.stdout}`)
  await clean(w, w.a, 5.5, 'a adopts the block')
  for (const n of [w.a, w.b]) {
    const held = await blockedOn(n, 6)
    assert.deepEqual([held.has(X), held.has(Y)], [true, false], `list --json on ${n.name}: ${X} blocked, ${Y} not`)
  }
  assert.equal(await zcard(Y), '5', `Redis holds ${Y}'s 5 failures, none twice`)
  assert.deepEqual(w.transcript.filter((x) => x.includes(w.password)).map((x) => x.slice(0, 2000)), [], 'the password appears in no output')
  console.log(`tcp: with Redis dropped, hacks warned (${lines.length} runs): ${lines[0]}`)
  if (process.env.CLUSTER_TRANSCRIPT === '1') console.log(w.transcript.join('\n'))
})

test('Redis over TCP with a wrong password: hacks exits 0 with one warning naming the refusal, never a password; block exits 8', async (t) => {
  if (!ready(t)) return
  const w = await tcpWorld(t)
  const wrong = `Wr${randomBytes(9).toString('hex')}Zq`
  w.a.configure({redis: `redis://:${wrong}@${REDIS_A}:6379/0`, node: 'a', timeoutSeconds: 1})
  appendLines(w.a.log, [0, 10, 20].map((s) => f2(at(1, s), X)))
  const r = await w.run(w.a, ['hacks'], 2)
  assert.equal(r.exitCode, 0, `hacks with a wrong password exits 0:\n${r.stderr}`)
  assert.ok(r.ms < 6_000, `hacks with a wrong password ends within 6 s: ${Math.round(r.ms)} ms`)
  const warning = clusterWarning(r)
  assert.ok(!('problem' in warning), `hacks with a wrong password: ${'problem' in warning ? warning.problem : ''}`)
  assert.match(warning.line, /WRONGPASS|invalid (username-)?password|NOAUTH|auth/i, `the warning names the refusal: ${warning.line}`)
  const blk = await w.run(w.a, ['block', '203.0.113.99'], 2.5)
  assert.equal(blk.exitCode, 8, `block with a wrong password exits 8:\n${blk.stderr}${blk.stdout}`)
  assert.doesNotMatch(`${blk.stdout}\n${blk.stderr}`, STACK)
  for (const [what, secret] of [
    ['the wrong password', wrong],
    ['the right password', w.password],
  ] as const) {
    assert.deepEqual(w.transcript.filter((x) => x.includes(secret)).map((x) => x.slice(0, 2000)), [], `${what} appears in no output`)
  }
  console.log(`tcp: with a wrong password, hacks warned: ${warning.line}`)
  if (process.env.CLUSTER_TRANSCRIPT === '1') console.log(w.transcript.join('\n'))
  // The right password again: the waiting failures go to Redis, once.
  w.a.configure({redis: `redis://:${w.password}@${REDIS_A}:6379/0`, node: 'a', timeoutSeconds: 1})
  await clean(w, w.a, 3, 'the right password again')
  assert.equal((await w.redis.cli(['zcard', `rcguard:f:master:${X}`])).stdout.trim(), '3', 'the 3 failures that waited are in Redis once')
})
