/**
 * The six commands end to end through bin/run.js as a subprocess, with
 * firewall.backend none (no root needed). The same flows against the real
 * iptables are in test/netns.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync, existsSync} from 'node:fs'
import {join} from 'node:path'
import {appendLines, burst, cli, cliJson, f1, f2, setup, ROOT, T0, at, nowEnv} from '../helpers/env.js'

interface Row {
  ip: string
  state: string
  attempts: number
  firstSeen: string | null
  lastSeen: string | null
  blockedUntil: string | null
  instance: string | null
}

test('five failures watch, the sixth within 10 minutes blocks; list --json shows the contract fields', async (t) => {
  const s = setup(t)
  appendLines(s.log, burst(at(0), '203.0.113.7', 5, 60))
  const first = await cli(['hacks', '--config', s.config], {env: nowEnv(5)})
  assert.equal(first.exitCode, 0, first.stderr)
  let rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(5)})
  assert.deepEqual(rows.map((r) => [r.ip, r.state, r.attempts]), [['203.0.113.7', 'watching', 5]])
  appendLines(s.log, [f2(at(6), '203.0.113.7')])
  const second = await cli(['hacks', '--config', s.config], {env: nowEnv(6)})
  assert.equal(second.exitCode, 0, second.stderr)
  assert.match(second.stdout, /blocked 203\.0\.113\.7 on master until 2026-11-25 14:06:00Z/)
  rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(7)})
  assert.equal(rows.length, 1)
  const r = rows[0]!
  assert.equal(r.state, 'blocked')
  assert.equal(r.instance, 'master')
  assert.equal(r.firstSeen, at(0).toISOString())
  assert.equal(r.lastSeen, at(6).toISOString())
  assert.equal(r.blockedUntil, at(66).toISOString())
  assert.equal(r.attempts, 6)
})

test('a hacks run with nothing new prints nothing (cron mails only news)', async (t) => {
  const s = setup(t)
  appendLines(s.log, burst(at(0), '203.0.113.8', 6))
  assert.match((await cli(['hacks', '--config', s.config], {env: nowEnv(3)})).stdout, /blocked/)
  const quiet = await cli(['hacks', '--config', s.config], {env: nowEnv(4)})
  assert.equal(quiet.exitCode, 0)
  assert.equal(quiet.stdout, '')
  assert.equal(quiet.stderr, '')
})

test('each log line is read once: a second run over the same bytes counts nothing again', async (t) => {
  const s = setup(t)
  appendLines(s.log, burst(at(0), '203.0.113.9', 3))
  await cli(['scan', '--config', s.config], {env: nowEnv(1)})
  await cli(['scan', '--config', s.config], {env: nowEnv(1)})
  await cli(['hacks', '--config', s.config], {env: nowEnv(1)})
  const rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(1)})
  assert.equal(rows[0]?.attempts, 3)
})

test('one attempt in errors.log and userlogins.log counts once', async (t) => {
  const s = setup(t)
  for (let i = 0; i < 5; i++) {
    const sp = `dup0000${i}`
    appendLines(s.errorsLog, [f1(at(i), '192.0.2.33', 'x', sp)])
    appendLines(s.log, [f2(new Date(at(i).getTime() + 1000), '192.0.2.33', 'x', 0, sp)])
  }
  await cli(['hacks', '--config', s.config], {env: nowEnv(5)})
  const rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(5)})
  assert.deepEqual(rows.map((r) => [r.state, r.attempts]), [['watching', 5]])
})

test('expiry unblocks: after blockMinutes the address is no longer blocked', async (t) => {
  const s = setup(t)
  appendLines(s.log, burst(at(0), '198.18.0.1', 6))
  await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  const later = await cli(['hacks', '--config', s.config], {env: nowEnv(62)})
  assert.match(later.stdout, /unblocked 198\.18\.0\.1 on master: its block is over/)
  const rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(62)})
  assert.notEqual(rows[0]?.state, 'blocked')
})

test('unblock forgets the entry; a new burst blocks again', async (t) => {
  const s = setup(t)
  appendLines(s.log, burst(at(0), '203.0.113.10', 6))
  await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  const u = await cli(['unblock', '203.0.113.10', '--config', s.config], {env: nowEnv(3)})
  assert.equal(u.exitCode, 0, u.stderr)
  assert.match(u.stdout, /203\.0\.113\.10: unblocked and forgotten/)
  assert.deepEqual(await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(3)}), [])
  appendLines(s.log, burst(at(4), '203.0.113.10', 6))
  const again = await cli(['hacks', '--config', s.config], {env: nowEnv(6)})
  assert.match(again.stdout, /blocked 203\.0\.113\.10/)
})

test('unblock refuses invalid addresses (exit 2) and reports unknown ones (exit 6)', async (t) => {
  const s = setup(t)
  const bad = await cli(['unblock', '300.1.2.3', '--config', s.config])
  assert.equal(bad.exitCode, 2)
  assert.equal(bad.stderr.trim(), 'rcguard: not an IPv4 or IPv6 address: 300.1.2.3')
  const unknown = await cli(['unblock', '192.0.2.77', '--config', s.config])
  assert.equal(unknown.exitCode, 6)
  assert.match(unknown.stderr, /not in the database: 192\.0\.2\.77/)
})

test('whitelist lifts a current block at once, covers a CIDR, and a new burst never blocks', async (t) => {
  const s = setup(t)
  appendLines(s.log, burst(at(0), '192.0.2.140', 6))
  await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  const w = await cli(['whitelist', '192.0.2.128/25', '--comment', 'office', '--config', s.config], {env: nowEnv(3)})
  assert.equal(w.exitCode, 0, w.stderr)
  assert.match(w.stdout, /192\.0\.2\.128\/25: whitelisted; lifted 192\.0\.2\.140/)
  appendLines(s.log, [...burst(at(4), '192.0.2.140', 10), ...burst(at(4), '192.0.2.200', 10)])
  const h = await cli(['hacks', '--config', s.config], {env: nowEnv(8)})
  assert.equal(h.stdout, '')
  const rows = await cliJson<(Row & {comment: string | null})[]>(['list', '--config', s.config], {env: nowEnv(8)})
  assert.deepEqual(rows.map((r) => [r.ip, r.state, r.comment]), [['192.0.2.128/25', 'whitelisted', 'office']])
  const listed = await cli(['whitelist', '--config', s.config])
  assert.match(listed.stdout, /127\.0\.0\.0\/8\tconfig/)
  assert.match(listed.stdout, /192\.0\.2\.128\/25\tdatabase\toffice/)
  const rm = await cli(['whitelist', '--remove', '192.0.2.128/25', '--config', s.config])
  assert.equal(rm.exitCode, 0)
  appendLines(s.log, burst(at(9), '192.0.2.140', 6))
  assert.match((await cli(['hacks', '--config', s.config], {env: nowEnv(11)})).stdout, /blocked 192\.0\.2\.140/)
  const bad = await cli(['whitelist', '192.0.2.0/40', '--config', s.config])
  assert.equal(bad.exitCode, 2)
  assert.match(bad.stderr, /not an IPv4\/IPv6 address or CIDR network: 192\.0\.2\.0\/40/)
})

test('loopback is never blocked, even without a whitelist', async (t) => {
  const s = setup(t, {whitelist: []})
  appendLines(s.log, [...burst(at(0), '127.0.0.1', 10), ...burst(at(0), '::1', 10)])
  await cli(['hacks', '--config', s.config], {env: nowEnv(5)})
  assert.deepEqual(await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(5)}), [])
})

test('flush forgets every offender, keeps the whitelist unless --all, and needs --yes off a terminal', async (t) => {
  const s = setup(t)
  appendLines(s.log, burst(at(0), '203.0.113.11', 6))
  await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  await cli(['whitelist', '192.0.2.1', '--config', s.config])
  const refused = await cli(['flush', '--config', s.config])
  assert.equal(refused.exitCode, 2)
  assert.match(refused.stderr, /--yes/)
  const f = await cli(['flush', '--yes', '--config', s.config])
  assert.equal(f.exitCode, 0, f.stderr)
  let rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(3)})
  assert.deepEqual(rows.map((r) => r.state), ['whitelisted'])
  await cli(['flush', '--yes', '--all', '--config', s.config])
  rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(3)})
  assert.deepEqual(rows, [])
  // Positions survive a flush: old lines are not counted again.
  await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.deepEqual(await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(3)}), [])
})

test('scan --dry-run --log FILE --json: one event per recognised failure; nothing written', async (t) => {
  const s = setup(t)
  const file = join(s.dir, 'sample.log')
  writeFileSync(
    file,
    [
      '[25-Nov-2026 13:00:00 +0000]: PHP noise',
      f2(at(0), '192.0.2.5', 'bob'),
      f2(at(1), '2001:db8::7', 'eve', -2),
      f1(at(2), '192.0.2.6', 'carol'),
    ].join('\n') + '\n',
  )
  const out = await cliJson<{events: {line: number; time: string; ip: string; user: string; counted: boolean}[]}>([
    'scan', '--dry-run', '--log', file, '--config', s.config,
  ])
  assert.deepEqual(
    out.events.map((e) => [e.line, e.time, e.ip, e.user, e.counted]),
    [
      [2, at(0).toISOString(), '192.0.2.5', 'bob', true],
      [3, at(1).toISOString(), '2001:db8::7', 'eve', false],
      [4, at(2).toISOString(), '192.0.2.6', 'carol', true],
    ],
  )
  assert.equal(existsSync(s.db), false)
  const noDry = await cli(['scan', '--log', file, '--config', s.config])
  assert.equal(noDry.exitCode, 2)
  const missing = await cli(['scan', '--dry-run', '--log', join(s.dir, 'nope.log'), '--config', s.config])
  assert.notEqual(missing.exitCode, 0)
  assert.match(missing.stderr, /nope\.log does not exist/)
})

test('hacks --dry-run prints the rule set, writes nothing and needs no root', async (t) => {
  const s = setup(t, {firewall: {backend: 'iptables'}})
  appendLines(s.log, [...burst(at(0), '203.0.113.12', 6), ...burst(at(0), '2001:db8::66', 6)])
  const r = await cli(['hacks', '--dry-run', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /-A rcguard-master -s 203\.0\.113\.12\/32 -j DROP/)
  assert.match(r.stdout, /-A rcguard-master -s 2001:db8::66\/128 -j DROP/)
  assert.match(r.stdout, /-A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment "managed by rcguard" -j rcguard-master/)
  assert.equal(existsSync(s.db), false)
})

test('the README demo: hacks --dry-run --verbose on the bundled example', async () => {
  const r = await cli(['hacks', '--dry-run', '--verbose', '--config', join(ROOT, 'examples', 'rcguard.yml')])
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /blocked 203\.0\.113\.7 on master until deleted/)
  assert.match(r.stdout, /blocked 2001:db8::bad:1 on master until deleted/)
  assert.match(r.stdout, /198\.51\.100\.2 is never blocked: whitelisted/)
  assert.doesNotMatch(r.stdout, /blocked 192\.0\.2\.99/)
  // The framing line counts against the address Roundcube wrote, not the one in the user name.
  assert.match(r.stdout, /userlogins\.log:31: F2 203\.0\.113\.99 .* -> counted/)
  assert.doesNotMatch(r.stdout, /: F\d 192\.0\.2\.200 /)
})

test('bad config: one line naming the key, exit 3; missing explicit config: exit 3', async (t) => {
  const s = setup(t)
  writeFileSync(s.config, 'maxAttempts: -1\n')
  const r = await cli(['list', '--config', s.config])
  assert.equal(r.exitCode, 3)
  assert.equal(r.stderr.trim().split('\n').length, 1)
  assert.match(r.stderr, /maxAttempts/)
  const m = await cli(['list', '--config', join(s.dir, 'none.yml')])
  assert.equal(m.exitCode, 3)
  assert.match(m.stderr, /none\.yml does not exist/)
  const env = await cli(['list'], {env: {RCGUARD_CONFIG: join(s.dir, 'none.yml')}})
  assert.equal(env.exitCode, 3)
})

test('a corrupt database: exit 4, file left untouched, also with --json', async (t) => {
  const s = setup(t)
  appendLines(s.log, burst(at(0), '203.0.113.13', 6))
  await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  const good = readFileSync(s.db, 'utf8')
  writeFileSync(s.db, good.slice(0, good.length / 2))
  const before = readFileSync(s.db)
  for (const args of [['hacks'], ['list'], ['unblock', '203.0.113.13'], ['list', '--json']]) {
    const r = await cli([...args, '--config', s.config], {env: nowEnv(3)})
    assert.equal(r.exitCode, 4, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, /db\.json is corrupt/)
    assert.deepEqual(readFileSync(s.db), before)
  }
})

test('a busy lock: hacks exits 75 quietly at once; an admin command waits a few seconds, then fails clearly', async (t) => {
  const s = setup(t)
  const {acquireLock} = await import('../../src/core/store/lock.js')
  const {mkdirSync} = await import('node:fs')
  const {dirname} = await import('node:path')
  mkdirSync(dirname(s.db), {recursive: true})
  const held = await acquireLock(`${s.db}.lock`, {waitMs: 0})
  const release = () => held.release()
  try {
    const h = await cli(['hacks', '--config', s.config])
    assert.equal(h.exitCode, 75)
    assert.equal(h.stdout, '')
    assert.equal(h.stderr, '')
    const started = Date.now()
    const u = await cli(['whitelist', '192.0.2.1', '--config', s.config])
    assert.equal(u.exitCode, 75)
    assert.ok(Date.now() - started > 2000, 'waited for the lock before giving up')
    assert.match(u.stderr, /another rcguard process holds the lock .*db\.json\.lock; try again in a moment/)
  } finally {
    await release()
  }
  const after = await cli(['whitelist', '192.0.2.1', '--config', s.config])
  assert.equal(after.exitCode, 0, after.stderr)
})

test('a configuration or log anyone may write is reported on every run', async (t) => {
  const s = setup(t)
  const {chmodSync} = await import('node:fs')
  chmodSync(s.log, 0o666)
  const r = await cli(['list', '--config', s.config])
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stderr, /^rcguard: warning: log .*userlogins\.log is writable by every user: anyone could change what rcguard blocks; chmod o-w /m)
  chmodSync(s.log, 0o640)
  chmodSync(s.dir, 0o777)
  const d = await cli(['list', '--config', s.config])
  assert.match(d.stderr, /configuration directory .* is writable by every user/)
  chmodSync(s.dir, 0o1777)
  const sticky = await cli(['list', '--config', s.config])
  assert.equal(sticky.stderr, '', 'a sticky directory like /tmp is fine')
})
