/**
 * The cluster's rules beyond the first one, on three nodes sharing a real
 * redis-server (test/helpers/redis.ts) with firewall backend none (the
 * firewall side is test/cluster/cluster.test.ts's): networkBlock and the
 * user windows count every node's failures; a block by hand, its comment and
 * length, reach every node; escalation counts blocks made on any node; and
 * records planted in Redis that rcguard never writes, or that name what is
 * never blocked here, are not taken.
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {appendLines, at, f2, requireRoot} from '../helpers/env.js'
import {requireRedis, startRedis} from '../helpers/redis.js'
import {blockedOn, hacks, listed, nodes} from '../helpers/cluster-nodes.js'
import {Watcher} from '../helpers/watcher.js'

test('networkBlock counts distinct addresses over every node: 2 of a /24 on each of two nodes block the /24 (minAddresses 4); 2 on one node alone do not', async (t) => {
  if (!requireRoot(t) || !requireRedis(t)) return
  const redis = await startRedis(t)
  const [a, b, c] = nodes(t, redis, {networkBlock: {minAddresses: 4, periodMinutes: 10}})
  assert.ok(a && b && c)
  appendLines(a.log, [f2(at(0, 0), '198.51.100.1', 'x'), f2(at(0, 30), '198.51.100.2', 'y'), f2(at(1, 0), '192.0.2.10', 'x'), f2(at(1, 10), '192.0.2.11', 'y')])
  appendLines(b.log, [f2(at(2, 0), '198.51.100.3', 'z'), f2(at(2, 30), '198.51.100.4', 'w')])
  const now = at(3, 0).toISOString()
  await hacks(a, now)
  assert.equal(await blockedOn(a, '198.51.100.0/24', now), undefined, 'a alone saw 2 addresses of it')
  const r = await hacks(b, now)
  assert.match(r.stdout, /blocked 198\.51\.100\.0\/24 on master .* by 4 addresses of the network within 10 min/)
  for (const n of [a, c]) await hacks(n, now)
  for (const n of [a, b, c]) assert.equal((await blockedOn(n, '198.51.100.0/24', now))?.rule, 'network:4/10', n.name)
  for (const n of [a, b, c]) assert.equal(await blockedOn(n, '192.0.2.0/24', now), undefined, `${n.name}: 192.0.2.0/24 had 2 addresses`)
})

test('a user window counts the names tried on every node: one name on each of three nodes is 3 names (users:3/60); one name three times is not', async (t) => {
  if (!requireRoot(t) || !requireRedis(t)) return
  const redis = await startRedis(t)
  const all = nodes(t, redis, {maxAttempts: 100, windows: [{maxUsers: 3, periodMinutes: 60}]})
  all.forEach((n, i) => appendLines(n.log, [f2(at(i * 10, 0), '203.0.113.50', `user${i}@example.com`), f2(at(i * 10, 5), '203.0.113.51', 'same@example.com')]))
  const now = at(25, 0).toISOString()
  for (const n of all) await hacks(n, now)
  for (const n of all) await hacks(n, now)
  for (const n of all) {
    assert.equal((await blockedOn(n, '203.0.113.50', now))?.rule, 'users:3/60', n.name)
    assert.equal(await blockedOn(n, '203.0.113.51', now), undefined, `${n.name}: one name, tried on three nodes`)
  }
})

test('block by hand on one node reaches the others with its comment and length; escalation counts the blocks of every node', async (t) => {
  if (!requireRoot(t) || !requireRedis(t)) return
  const redis = await startRedis(t)
  const [a, b, c] = nodes(t, redis)
  assert.ok(a && b && c)
  const t0 = at(0, 0).toISOString()
  let r = await a.run(['block', '203.0.113.60', '--minutes', '30', '--comment', 'seen on the web node'], t0)
  assert.equal(r.exitCode, 0, r.stderr)
  await hacks(b, t0)
  const held = await blockedOn(b, '203.0.113.60', t0)
  assert.equal(held?.comment, 'seen on the web node')
  assert.equal(held?.blockedUntil, at(30, 0).toISOString())
  // A block made by the windows on c, after the hand block ended: the second block of the address, twice as long.
  appendLines(c.log, Array.from({length: 6}, (_, i) => f2(at(40, i * 10), '203.0.113.60', 'q')))
  const t1 = at(42, 0).toISOString()
  r = await hacks(c, t1)
  assert.match(r.stdout, /blocked 203\.0\.113\.60 on master until .* by 6 failures within 10 min/)
  for (const n of [a, b]) await hacks(n, t1)
  for (const n of [a, b, c]) assert.equal((await blockedOn(n, '203.0.113.60', t1))?.blockedUntil, new Date(at(40, 50).getTime() + 120 * 60_000).toISOString(), `${n.name}: block 2 lasts 2 h`)
})

test('records planted in Redis that rcguard never writes, or that name what is never blocked here, are not taken (one warning); valid ones are', async (t) => {
  if (!requireRoot(t) || !requireRedis(t)) return
  const redis = await startRedis(t)
  const [a] = nodes(t, redis)
  assert.ok(a)
  const now = at(0, 0).toISOString()
  await hacks(a, now) // the first run: nothing yet
  const rec = (at_: number, till: number) => JSON.stringify({at: at_, till, rule: 'failures:6/10', node: 'x', n: 1})
  const t0 = at(0, 0).getTime()
  const plant = [
    ['203.0.113.70', rec(t0, t0 + 3_600_000)], // valid: taken
    ['127.0.0.1', rec(t0, t0 + 3_600_000)], // loopback, whitelisted: never blocked here
    ['0.0.0.0/0', rec(t0, t0 + 3_600_000)], // everything
    ['203.0.113.71; reboot', rec(t0, t0 + 3_600_000)], // not an address
    ['203.0.113.072', rec(t0, t0 + 3_600_000)], // not the canonical text
    ['203.0.113.73', '{"at": "soon"}'], // not a record
    ['203.0.113.74', 'not json'],
  ]
  for (const [key, value] of plant) assert.equal((await redis.cli(['HSET', 'rcguard:b:master', key as string, value as string])).exitCode, 0)
  const r = await a.run(['hacks'], now)
  assert.equal(r.exitCode, 0, r.stderr)
  const warnings = r.stderr.split('\n').filter((l) => /cluster:/.test(l))
  assert.equal(warnings.length, 1, r.stderr)
  assert.match(warnings[0] ?? '', /6 record\(s\) in Redis not taken/)
  const entries = await listed(a, now)
  assert.deepEqual(entries.filter((e) => e.state === 'blocked').map((e) => e.ip), ['203.0.113.70'])
})

test('flush --cluster clears what Redis shares: every node drops the blocks it held at its next run (none pushed back); the whitelist stays unless --all', async (t) => {
  if (!requireRoot(t) || !requireRedis(t)) return
  const redis = await startRedis(t)
  const [a, b, c] = nodes(t, redis)
  assert.ok(a && b && c)
  const t0 = at(0, 0).toISOString()
  for (const ip of ['203.0.113.90', '203.0.113.91']) assert.equal((await a.run(['block', ip], t0)).exitCode, 0)
  assert.equal((await a.run(['whitelist', '198.51.100.0/24'], t0)).exitCode, 0)
  appendLines(c.log, [f2(at(0, 10), '203.0.113.92', 'x'), f2(at(0, 20), '203.0.113.92', 'y')])
  for (const n of [b, c]) await hacks(n, t0)
  for (const n of [a, b, c]) assert.ok(await blockedOn(n, '203.0.113.90', t0), n.name)

  const t1 = at(1, 0).toISOString()
  let r = await b.run(['flush', '--cluster', '--yes'], t1)
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /^cluster: removed \d+ keys from Redis; every node drops the blocks it holds from before at its next run$/m)
  assert.deepEqual(await redis.keys(), ['rcguard:flushed', 'rcguard:w'], 'only the marker and the whitelist are left')
  for (const n of [a, c, b]) await hacks(n, t1)
  for (const n of [a, b, c]) {
    assert.deepEqual((await listed(n, t1)).filter((e) => e.state === 'blocked').map((e) => e.ip), [], `${n.name}: no block left, none pushed back`)
    assert.ok((await listed(n, t1)).some((e) => e.ip === '198.51.100.0/24' && e.state === 'whitelisted'), `${n.name}: the whitelist stays`)
  }
  // c's two failures from before the flush are forgotten: four new ones are not six.
  appendLines(a.log, Array.from({length: 4}, (_, i) => f2(at(2, i * 10), '203.0.113.92', 'z')))
  for (const n of [a, c]) await hacks(n, at(3, 0).toISOString())
  assert.equal(await blockedOn(a, '203.0.113.92', at(3, 0).toISOString()), undefined)

  r = await c.run(['flush', '--cluster', '--all', '--yes'], at(4, 0).toISOString())
  assert.equal(r.exitCode, 0, r.stderr)
  for (const n of [a, b]) await hacks(n, at(4, 0).toISOString())
  for (const n of [a, b, c]) assert.ok(!(await listed(n, at(4, 0).toISOString())).some((e) => e.state === 'whitelisted'), `${n.name}: --all empties the whitelist everywhere`)
})

test('list on any node shows the cluster as Redis holds it now, before that node has run; with Redis down, what it held, and a warning', async (t) => {
  if (!requireRoot(t) || !requireRedis(t)) return
  const redis = await startRedis(t)
  const [a, b] = nodes(t, redis)
  assert.ok(a && b)
  const t0 = at(0, 0).toISOString()
  await hacks(b, t0)
  assert.equal((await a.run(['block', '203.0.113.95', '--comment', 'from a'], t0)).exitCode, 0)
  assert.equal((await a.run(['whitelist', '198.51.100.7'], t0)).exitCode, 0)
  const seen = await listed(b, t0)
  assert.equal(seen.find((e) => e.ip === '203.0.113.95')?.state, 'blocked', 'b has not run since: list reads Redis')
  assert.ok(seen.some((e) => e.ip === '198.51.100.7/32' && e.state === 'whitelisted'), JSON.stringify(seen))
  assert.equal(await blockedOn(b, '203.0.113.95', t0).then((e) => e?.comment), 'from a')
  await redis.stop()
  const r = await b.run(['list', '--json'], t0)
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stderr, /^rcguard: warning: cluster: Redis at unix:\/\/\S+ \(cluster node b\): .*: this is what this node held at its last run$/m)
  assert.deepEqual((JSON.parse(r.stdout) as {ip: string}[]).map((e) => e.ip), [], 'b held nothing at its last run')
})

test('watch on a cluster node holds a block made on another node within its 10 s poll, with no line of its own logs, and lets go of it when it is unblocked there', async (t) => {
  if (!requireRoot(t) || !requireRedis(t)) return
  const redis = await startRedis(t)
  const [a, b] = nodes(t, redis)
  assert.ok(a && b)
  const w = new Watcher(b.config, {env: {RCGUARD_NOW: ''}})
  t.after(() => w.stop())
  // Its first cycle over (an empty log: nothing to print), the block made on a reaches it only by the poll.
  await new Promise((r) => setTimeout(r, 3000))
  assert.deepEqual(w.err, [])
  assert.equal((await a.run(['block', '203.0.113.97'], '')).exitCode, 0)
  const line = await w.waitFor(/^holding 203\.0\.113\.97 on master /, 15_000)
  assert.match(line, /: blocked on cluster node a by hand$/)
  assert.equal((await a.run(['unblock', '203.0.113.97'], '')).exitCode, 0)
  await w.waitFor(/^unblocked 203\.0\.113\.97 on master: lifted on another node of the cluster$/, 15_000)
})

test('accountAlert counts the addresses failing on one account over every node: reported once, by the node whose run completes the window; with block, the address that failed on it twice (once on each of two nodes) is blocked everywhere, the others not', async (t) => {
  if (!requireRoot(t) || !requireRedis(t)) return
  const redis = await startRedis(t)
  const [a, b, c] = nodes(t, redis, {accountAlert: {minAddresses: 4, periodMinutes: 10, block: true}})
  assert.ok(a && b && c)
  const victim = 'ceo@example.com'
  // 203.0.113.100 fails on the account on a and on b: twice in the window; the other three once each.
  appendLines(a.log, [f2(at(0, 0), '203.0.113.100', victim), f2(at(0, 20), '203.0.113.101', 'CEO@example.com ')])
  appendLines(b.log, [f2(at(1, 0), '203.0.113.102', victim), f2(at(1, 20), '203.0.113.100', victim)])
  appendLines(c.log, [f2(at(2, 0), '203.0.113.103', victim)])
  const now = at(3, 0).toISOString()
  const reports: string[] = []
  for (const n of [a, b, c, a, b]) {
    const r = await hacks(n, now)
    reports.push(...r.stdout.split('\n').filter((l) => l.startsWith('account ')).map((l) => `${n.name}: ${l}`))
  }
  assert.equal(reports.length, 1, reports.join('\n'))
  assert.match(reports[0] ?? '', /^c: account "ceo@example.com" on master under attack: 4 addresses failed on it within 10 min/)
  for (const n of [a, b, c]) {
    const held = (await listed(n, now)).filter((e) => e.state === 'blocked').map((e) => e.ip)
    assert.deepEqual(held, ['203.0.113.100'], `${n.name}: only the address that failed twice on it`)
  }
})

test('a log truncated in place (copytruncate) that reaches the same byte offsets again with new lines: each new failure counts once more (3 + 2 after the truncation on a, 1 on b: 6)', async (t) => {
  if (!requireRoot(t) || !requireRedis(t)) return
  const redis = await startRedis(t)
  const [a, b] = nodes(t, redis)
  assert.ok(a && b)
  appendLines(a.log, [0, 10, 20].map((s) => f2(at(0, s), '203.0.113.130', 'x', 0, 'sess0001')))
  await hacks(a, at(0, 30).toISOString())
  // logrotate copytruncate: the file keeps its inode, and lines of the same length land at the same offsets.
  writeFileSync(a.log, '')
  appendLines(a.log, [40, 50].map((s) => f2(at(0, s), '203.0.113.130', 'x', 0, 'sess0001')))
  await hacks(a, at(1, 0).toISOString())
  assert.equal(await blockedOn(a, '203.0.113.130', at(1, 0).toISOString()), undefined, 'a alone counted 5')
  appendLines(b.log, [f2(at(1, 0), '203.0.113.130', 'x', 0, 'sess0002')])
  const r = await hacks(b, at(1, 10).toISOString())
  assert.match(r.stdout, /^blocked 203\.0\.113\.130 on master .* by 6 failures within 10 min/m)
})

test('a node away longer than the tombstones are kept (7 days) does not push back a block lifted meanwhile: the cluster\'s blocks win over its own from before', async (t) => {
  if (!requireRoot(t) || !requireRedis(t)) return
  const redis = await startRedis(t)
  const [a, b] = nodes(t, redis)
  assert.ok(a && b)
  const t0 = at(0, 0)
  assert.equal((await a.run(['block', '203.0.113.140', '--minutes', '0'], t0.toISOString())).exitCode, 0)
  await hacks(b, t0.toISOString())
  assert.ok(await blockedOn(b, '203.0.113.140', t0.toISOString()), 'b holds it')
  // b goes away; the block is lifted on a the next day; a runs for a week after (the tombstone goes).
  const day = (n: number): string => new Date(t0.getTime() + n * 86_400_000).toISOString()
  assert.equal((await a.run(['unblock', '203.0.113.140'], day(1))).exitCode, 0)
  await hacks(a, day(9))
  assert.deepEqual(await redis.cli(['HGETALL', 'rcguard:u:master']).then((r) => r.stdout.trim()), '', 'the tombstone is gone')
  const back = await hacks(b, day(9))
  assert.match(back.stdout, /^unblocked 203\.0\.113\.140 on master: lifted on another node of the cluster$/m)
  for (const n of [a, b]) assert.equal(await blockedOn(n, '203.0.113.140', day(9)), undefined, n.name)
  assert.equal((await redis.cli(['HEXISTS', 'rcguard:b:master', '203.0.113.140'])).stdout.trim(), '0', 'not pushed back')
  // A node away for a shorter while still pushes back what Redis lost (restarted empty).
  assert.equal((await a.run(['block', '203.0.113.141', '--minutes', '0'], day(9))).exitCode, 0)
  await hacks(b, day(9))
  await redis.restartEmpty()
  await hacks(b, day(12))
  assert.equal((await redis.cli(['HEXISTS', 'rcguard:b:master', '203.0.113.141'])).stdout.trim(), '1', 'pushed back after 3 days away')
})

test('accountAlert over the cluster with user names as attackers write them: separators, quotes, percent signs, case, blanks and overlong names count as the one account Roundcube counts, and reach no key or member', async (t) => {
  if (!requireRoot(t) || !requireRedis(t)) return
  const redis = await startRedis(t)
  const [a, b] = nodes(t, redis, {accountAlert: {minAddresses: 4, periodMinutes: 10}})
  assert.ok(a && b)
  const long = `${'x'.repeat(70)}|0001"%0a`
  // The same account written four ways (Roundcube trims and lowercases); one more, cut to 64 characters, is another.
  const names = ['Ev|il"%0a@x', ' ev|il"%0a@X ', 'EV|IL"%0A@x', 'ev|il"%0a@x']
  appendLines(a.log, [f2(at(0, 0), '203.0.113.150', names[0]), f2(at(0, 10), '203.0.113.151', names[1]), f2(at(0, 20), '203.0.113.160', long)])
  appendLines(b.log, [f2(at(1, 0), '203.0.113.152', names[2]), f2(at(1, 10), '203.0.113.153', names[3]), f2(at(1, 20), '203.0.113.161', `${long}y`)])
  const now = at(2, 0).toISOString()
  await hacks(a, now)
  const r = await hacks(b, now)
  const reports = r.stdout.split('\n').filter((l) => l.startsWith('account '))
  assert.equal(reports.length, 1, r.stdout)
  assert.match(reports[0] ?? '', /^account "ev\|il"%0a@x" on master under attack: 4 addresses failed on it/)
  for (const key of await redis.keys()) assert.doesNotMatch(key, /ev\||%0a|x{10}/i, `no user name in a key: ${key}`)
})
