/**
 * Cluster mode (issue 15) against a real Redis and real firewalls: three
 * nodes a, b, c, each in its own network namespace with its own log,
 * database and firewall, sharing only a redis-server on a unix socket
 * (test/helpers/cluster.ts). A client namespace holds the attackers'
 * addresses on a link to every node, so real packets show who is refused.
 *
 * (a) Two failures in each node's log (6 in the cluster within 10 minutes):
 *     the runs on a and b block nothing, the run on c blocks it, the next runs
 *     on a and b make their firewalls hold it too, and every node drops its
 *     packets; IPv4 and IPv6. An address with 2 + 2 (c saw none) is blocked
 *     nowhere. Every key in Redis starts with the prefix (the default
 *     rcguard:, and a set one with db=2 in the URL: nothing in database 0); a
 *     node joining later (same prefix) lists the block, one of another prefix
 *     does not. nftables, and iptables.
 * (b) unblock on a lifts it on b and c at their next run, and nothing brings
 *     it back (c's own database still had it); it can be blocked again.
 * (c) whitelist on a lifts it on b and c at their next run, and new failures
 *     on every node (c's run completing the window) never block it again.
 * (d) With --requirepass and the password in the URL the cluster works (also
 *     for a node on redis://default:PASSWORD@127.0.0.1:PORT/0), and the
 *     password never appears in any output of any command, nor when it is
 *     wrong, nor in the warning for an unreachable server (redis://, rediss://,
 *     a missing socket), nor in the error for a bad cluster section.
 * (e) Failures logged in the same second on different nodes are different
 *     failures.
 *
 * Needs root (namespaces, nft/iptables) and redis-server; skips without them
 * and fails under CI=true.
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {at, f2, requireRoot, STACK, stderrLines} from '../helpers/env.js'
import {requireRedis} from '../helpers/redis.js'
import {blockedLines, blockEverywhere, everywhere, NODES, twoEach, world, type ListEntry, type RunResult} from '../helpers/cluster.js'

/** 2 failures in each node's log. */
const ATTACKER = '203.0.113.66'
const ATTACKER_6 = '2001:db8:66::66'
/** 2 failures in a's log and 2 in b's, none in c's: 4 in the cluster. */
const PAIR = '203.0.113.67'
/** A second attacker of (b) and (c), blocked beside ATTACKER, never lifted. */
const OTHER_ATTACKER = '203.0.113.68'
/** Never fails. */
const BYSTANDER = '203.0.113.77'

const ready = (t: TestContext): boolean => requireRoot(t) && requireRedis(t)

const blockedIn = (entries: ListEntry[], ip: string): ListEntry[] => entries.filter((e) => e.ip === ip && e.state === 'blocked')

for (const [backend, prefix, db] of [
  ['nftables', undefined, undefined],
  ['iptables', 'rcgt:iptables:', 2],
] as const) {
  test(`${backend}: 2 failures on each of three nodes block the address on all three (packets refused); 2 + 2 blocks it nowhere${prefix === undefined ? '' : `; prefix ${prefix}, db ${db}`}`, async (t) => {
    if (!ready(t)) return
    const w = await world(t, {backend, clients: [BYSTANDER, ATTACKER, ATTACKER_6, PAIR], cluster: prefix === undefined ? {} : {prefix}, db})
    // a at minute 1, b at 2, c at 3: ATTACKER and ATTACKER_6 everywhere, PAIR on a and b only.
    twoEach(w, [ATTACKER, ATTACKER_6, PAIR], 1, ['a', 'b'])
    twoEach(w, [ATTACKER, ATTACKER_6], 3, ['c'])

    const ra = await w.hacks('a', 4)
    assert.deepEqual(await w.holders(ATTACKER), [], 'after a (2 failures in the cluster) no firewall holds it')
    const rb = await w.hacks('b', 4.25)
    assert.deepEqual(await w.holders(ATTACKER), [], 'after b (4 failures in the cluster) no firewall holds it')
    for (const [r, n] of [[ra, 'a'], [rb, 'b']] as const) {
      assert.deepEqual([...blockedLines(r, ATTACKER), ...blockedLines(r, ATTACKER_6)], [], `${n} blocks nothing:\n${r.stdout}`)
    }

    const rc = await w.hacks('c', 4.5)
    assert.equal(blockedLines(rc, ATTACKER).length, 1, `c's run (the 6th failure of the cluster) blocks ${ATTACKER}:\n${rc.stdout}`)
    assert.equal(blockedLines(rc, ATTACKER_6).length, 1, `c's run blocks ${ATTACKER_6}:\n${rc.stdout}`)
    assert.ok(await w.holds('c', ATTACKER), `c's firewall holds ${ATTACKER}:\n${await w.listing('c')}`)

    await w.hacks('a', 5)
    await w.hacks('b', 5.25)
    for (const ip of [ATTACKER, ATTACKER_6]) assert.deepEqual(await w.holders(ip), [...NODES], `every firewall holds ${ip}`)
    assert.deepEqual(await w.holders(PAIR), [], `${PAIR} (2 + 2, c saw none) is held nowhere`)
    assert.deepEqual(
      await w.matrix([ATTACKER, ATTACKER_6, PAIR, BYSTANDER]),
      everywhere({[ATTACKER]: 'timeout', [ATTACKER_6]: 'timeout', [PAIR]: 'open', [BYSTANDER]: 'open'}),
      'real packets: the attacker is dropped by every node, the 2 + 2 address and the bystander pass',
    )

    for (const n of NODES) {
      const entries = await w.list(n, 5.5)
      for (const ip of [ATTACKER, ATTACKER_6]) assert.equal(blockedIn(entries, ip).length, 1, `list --json on ${n} shows ${ip} blocked:\n${JSON.stringify(entries)}`)
      assert.deepEqual(blockedIn(entries, PAIR), [], `list --json on ${n}: ${PAIR} is not blocked`)
    }

    const keys = await w.redis.keys(db ?? 0)
    const want = prefix ?? 'rcguard:'
    assert.ok(keys.length > 0, `rcguard wrote to Redis database ${db ?? 0}`)
    assert.deepEqual(keys.filter((k) => !k.startsWith(want)), [], `every key starts with ${want}`)
    if (db !== undefined) assert.deepEqual(await w.redis.keys(0), [], `with db=${db} in the URL, nothing is written to database 0`)

    // A node that joins later (own empty database and log, backend none) learns the block at its first run.
    const late = w.observer('d')
    await w.hacks(late, 6)
    assert.equal(blockedIn(await w.list(late, 6), ATTACKER).length, 1, 'a node joining later lists the cluster\'s block')
    // One of another prefix is another cluster on the same Redis.
    const stranger = w.observer('x', {prefix: 'rcgt:elsewhere:'})
    await w.hacks(stranger, 6)
    assert.deepEqual(blockedIn(await w.list(stranger, 6), ATTACKER), [], 'a node of another prefix knows nothing of it')
  })
}

test('nftables: unblock on a lifts the block on b and c at their next run; nothing brings it back; it can be blocked again', async (t) => {
  if (!ready(t)) return
  const w = await world(t, {backend: 'nftables', clients: [BYSTANDER, ATTACKER, OTHER_ATTACKER]})
  await blockEverywhere(w, [ATTACKER, OTHER_ATTACKER], 1)

  const u = await w.run('a', ['unblock', ATTACKER], 6)
  assert.equal(u.exitCode, 0, `unblock on a: ${u.stderr}${u.stdout}`)
  assert.ok(!(await w.holds('a', ATTACKER)), 'unblock lifts the rule on a at once')
  await w.hacks('b', 6.25)
  await w.hacks('c', 6.5)
  assert.deepEqual(await w.holders(ATTACKER), [], 'b and c lift it at their next run')
  assert.deepEqual(await w.holders(OTHER_ATTACKER), [...NODES], 'the other block stays everywhere')
  assert.deepEqual(
    await w.matrix([ATTACKER, OTHER_ATTACKER, BYSTANDER]),
    everywhere({[ATTACKER]: 'open', [OTHER_ATTACKER]: 'timeout', [BYSTANDER]: 'open'}),
    'real packets: the unblocked address passes every node',
  )
  // c decided the block and its own database had it: no run may push it back.
  for (const n of NODES) await w.hacks(n, 7)
  for (const n of ['a', 'b'] as const) await w.hacks(n, 7.5)
  assert.deepEqual(await w.holders(ATTACKER), [], 'no later run of any node brings the block back')
  for (const n of NODES) assert.deepEqual(blockedIn(await w.list(n, 8), ATTACKER), [], `list --json on ${n}: ${ATTACKER} is not blocked`)

  // Not whitelisted: a fresh burst across the cluster (well after the old failures' window) blocks it again.
  twoEach(w, [ATTACKER], 14)
  const runs: RunResult[] = []
  for (const n of NODES) runs.push(await w.hacks(n, 17))
  assert.equal(blockedLines(runs[2] as RunResult, ATTACKER).length, 1, `c's run blocks it again:\n${runs[2]?.stdout}`)
  for (const n of ['a', 'b'] as const) await w.hacks(n, 17.5)
  assert.deepEqual(await w.holders(ATTACKER), [...NODES], 'blocked again everywhere')
})

test('nftables: whitelist on a lifts the block on b and c at their next run, and new failures on every node never block it again', async (t) => {
  if (!ready(t)) return
  const w = await world(t, {backend: 'nftables', clients: [BYSTANDER, ATTACKER, OTHER_ATTACKER]})
  await blockEverywhere(w, [ATTACKER, OTHER_ATTACKER], 1)

  const wl = await w.run('a', ['whitelist', ATTACKER, '--comment', 'office'], 6)
  assert.equal(wl.exitCode, 0, `whitelist on a: ${wl.stderr}${wl.stdout}`)
  assert.ok(!(await w.holds('a', ATTACKER)), 'whitelist lifts the rule on a at once')
  await w.hacks('b', 6.25)
  await w.hacks('c', 6.5)
  assert.deepEqual(await w.holders(ATTACKER), [], 'b and c lift it at their next run')
  assert.deepEqual(await w.holders(OTHER_ATTACKER), [...NODES], 'the other block stays everywhere')

  // 2 new failures in every node's log, c's run completing the cluster's window, then a and b again.
  twoEach(w, [ATTACKER, OTHER_ATTACKER], 10)
  const runs: RunResult[] = []
  for (const n of NODES) runs.push(await w.hacks(n, 13))
  for (const n of ['a', 'b'] as const) runs.push(await w.hacks(n, 13.5))
  for (const r of runs) assert.deepEqual(blockedLines(r, ATTACKER), [], `no run blocks the whitelisted address:\n${r.stdout}`)
  assert.deepEqual(await w.holders(ATTACKER), [], 'the whitelisted address is held nowhere')
  for (const n of NODES) assert.deepEqual(blockedIn(await w.list(n, 14), ATTACKER), [], `list --json on ${n}: ${ATTACKER} is not blocked`)
  assert.deepEqual(
    await w.matrix([ATTACKER, OTHER_ATTACKER, BYSTANDER]),
    everywhere({[ATTACKER]: 'open', [OTHER_ATTACKER]: 'timeout', [BYSTANDER]: 'open'}),
    'real packets: the whitelisted address passes every node, the other attacker does not',
  )
})

test('nftables: the Redis password never appears in any output, also when it is wrong, the server unreachable or the cluster section invalid', async (t) => {
  if (!ready(t)) return
  const password = `Pw${randomBytes(9).toString('hex')}Zq`
  const wrong = `Wr${randomBytes(9).toString('hex')}Zq`
  const w = await world(t, {backend: 'nftables', clients: [BYSTANDER, ATTACKER], password, tcp: true})
  assert.ok(w.nodes.a.cluster.redis === `unix://${w.redis.socket}?password=${password}`)

  // It works with the password: the block reaches every node, and a node on redis://user:password@host:port/db.
  await blockEverywhere(w, [ATTACKER], 1)
  const tcp = w.observer('d', {redis: `redis://default:${password}@127.0.0.1:${w.redis.port}/0`})
  await w.hacks(tcp, 5.5, 'redis://default:PASSWORD@127.0.0.1:PORT/0')
  assert.equal(blockedIn(await w.list(tcp, 5.5), ATTACKER).length, 1, 'a node reaching Redis by redis://user:password@host:port/db lists the block')

  // Every command in its plain, verbose and JSON forms on a; the cluster's own work on b and c.
  const commands = [
    ['hacks', '--verbose'],
    ['hacks', '--json', '--verbose'],
    ['hacks', '--dry-run', '--verbose'],
    ['scan', '--verbose'],
    ['list'],
    ['list', '--json'],
    ['whitelist', '--json'],
    ['block', '203.0.113.88', '--comment', 'by hand'],
    ['unblock', '203.0.113.88', '--verbose'],
    ['whitelist', '203.0.113.89', '--verbose'],
    ['whitelist', '--remove', '203.0.113.89'],
    ['unblock', '203.0.113.90'],
    ['doctor'],
    ['doctor', '--json'],
  ]
  for (const args of commands) await w.run('a', args, 6)
  for (const n of ['b', 'c'] as const) for (const args of [['hacks', '--verbose'], ['hacks', '--json', '--verbose'], ['list', '--json']]) await w.run(n, args, 6)

  // A wrong password: a clear line about Redis, neither password in it, no stack trace, no hang, no crash.
  // (The checks run after the search for the passwords, so that a leak is what a failure reports first.)
  const checks: Array<() => void> = []
  const a = w.nodes.a
  const right = a.cluster
  a.configure({...right, redis: `unix://${w.redis.socket}?password=${wrong}`})
  for (const args of [['hacks'], ['list', '--json'], ['unblock', ATTACKER]]) {
    const r = await w.run('a', args, 7)
    checks.push(() => {
      assert.ok(!r.timedOut, `${args.join(' ')} with a wrong password finishes`)
      assert.notEqual(r.exitCode, 1, `${args.join(' ')} with a wrong password is no internal error:\n${r.stderr}`)
      assert.doesNotMatch(`${r.stdout}\n${r.stderr}`, STACK, `${args.join(' ')} with a wrong password: no stack trace:\n${r.stderr}`)
      if (args[0] === 'hacks') assert.ok(stderrLines(r).some((l) => /redis|cluster/i.test(l)), `hacks with a wrong password: a line on stderr names Redis or the cluster:\n${r.stderr}`)
    })
  }
  await w.run('a', ['hacks', '--verbose'], 7.5)

  // An unreachable server, the password in a redis:// and a rediss:// URL (nothing listens on port 1), and a missing socket.
  for (const url of [`redis://rcguard:${password}@127.0.0.1:1/0`, `rediss://:${password}@127.0.0.1:1/2`, `unix:///nonexistent/redis.sock?password=${password}&db=3`]) {
    a.configure({...right, redis: url})
    const r = await w.run('a', ['hacks'], 8)
    const shown = url.replace(password, '…')
    checks.push(() => {
      assert.equal(r.exitCode, 0, `hacks with an unreachable Redis (${shown}) exits 0:\n${r.stderr}`)
      assert.ok(stderrLines(r).some((l) => /redis|cluster/i.test(l)), `hacks with an unreachable Redis (${shown}): a warning names Redis or the cluster:\n${r.stderr}`)
    })
    await w.run('a', ['hacks', '--verbose', '--json'], 8)
  }

  // A cluster section that is refused (or a URL that cannot work): never the password, never an internal error.
  for (const bad of [
    {...right, redis: `ftp://rcguard:${password}@127.0.0.1/`},
    {...right, redis: `redis://rcguard:${password}@`},
    {...right, bogus: 1},
    {...right, node: ''},
  ]) {
    a.configure(bad)
    const r = await w.run('a', ['hacks', '--verbose'], 9)
    checks.push(() => assert.ok(r.exitCode !== 1 && !r.timedOut, `a bad cluster section is no internal error:\n${r.stderr}`))
  }
  await w.run('a', ['doctor'], 9)
  a.configure(right)

  for (const [what, secret] of [
    ['the password', password],
    ['the wrong password', wrong],
  ] as const) {
    const hits = w.transcript.filter((x) => x.includes(secret))
    assert.deepEqual(hits.map((h) => h.slice(0, 4000)), [], `${what} appears in no output`)
  }
  assert.ok(w.transcript.length > 40, 'every command was run')
  for (const check of checks) check()
})

test('nftables: failures logged in the same second on different nodes are different failures', async (t) => {
  if (!ready(t)) return
  const w = await world(t, {backend: 'nftables', clients: [BYSTANDER, ATTACKER]})
  for (const n of NODES) w.append(n, [f2(at(1, 0), ATTACKER), f2(at(1, 30), ATTACKER)])
  for (const n of NODES) await w.hacks(n, 2)
  for (const n of ['a', 'b'] as const) await w.hacks(n, 2.5)
  assert.deepEqual(await w.holders(ATTACKER), [...NODES], '3 × 2 failures at the same two seconds are 6 failures')
})
