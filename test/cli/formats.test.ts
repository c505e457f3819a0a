/**
 * Issue 3 end to end: log destinations, session-prefix learning across runs,
 * trusted proxies, the first read of a log, replay, globs and rotation,
 * through bin/run.js.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {appendLines, burst, cli, cliJson, f2, fileDate, setup, T0, at} from '../helpers/env.js'

const nowEnv = (min: number) => ({RCGUARD_NOW: at(min).toISOString(), TZ: 'UTC'})

interface Row {
  ip: string
  state: string
  attempts: number
}

function writeConfig(s: ReturnType<typeof setup>, logs: unknown[], extra: Record<string, unknown> = {}): void {
  writeFileSync(
    s.config,
    JSON.stringify({database: s.db, instances: [{name: 'master', logs, ports: [443]}], firewall: {backend: 'none'}, ...extra}),
  )
}

test('syslog (traditional and RFC 3339, with and without [pid]) is read in the host zone and blocks', async (t) => {
  const s = setup(t)
  const log = join(s.dir, 'syslog')
  writeConfig(s, [log])
  const lines: string[] = []
  for (let i = 0; i < 3; i++) {
    lines.push(`Nov 25 14:0${i}:00 mail roundcube: <sy${i}sy${i}sy> Failed login for a@example.com from 203.0.113.20 in session sy${i}sy${i}syxxxxxxxx (error: 0)`)
    lines.push(`Nov 25 14:0${i}:30 mail roundcube[4242]: <sz${i}sz${i}sz> Failed login for a@example.com from 203.0.113.20 in session sz${i}sz${i}szxxxxxxxx (error: 0)`)
  }
  lines.push('Nov 25 14:05:00 mail sshd[99]: Failed password for root from 192.0.2.1 port 22')
  writeFileSync(log, `${lines.join('\n')}\n`)
  // Europe/Berlin is UTC+1 in November: 14:02:30 local is 13:02:30Z.
  const r = await cli(['hacks', '--config', s.config], {env: {...nowEnv(4), TZ: 'Europe/Berlin'}})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /blocked 203\.0\.113\.20 on master until 2026-11-25 14:02:30Z/)

  const s2 = setup(t)
  const log2 = join(s2.dir, 'syslog')
  writeConfig(s2, [{path: log2, format: 'rfc3339', ident: 'webmail'}])
  writeFileSync(
    log2,
    `${[0, 1, 2, 3, 4, 5]
      .map((i) => `2026-11-25T13:0${i}:57.833801+00:00 mail webmail: <rf${i}rf${i}rf> IMAP Error: Login failed for b@example.com against localhost from 2001:db8::66. AUTHENTICATE PLAIN: Authentication failed. in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (POST /?_task=login&_action=login)`)
      .join('\n')}\n`,
  )
  const r2 = await cli(['hacks', '--config', s2.config], {env: nowEnv(6)})
  assert.match(r2.stdout, /blocked 2001:db8::66 on master/)
})

test('journalctl -o json records, MESSAGE as text or as bytes', async (t) => {
  const s = setup(t)
  const log = join(s.dir, 'journal.json')
  writeConfig(s, [log])
  const recs = [0, 1, 2, 3, 4, 5].map((i) => {
    const msg = `<jj${i}jj${i}jj> Failed login for c@example.com from 198.18.7.7 in session jj${i}jj${i}jjxxxxxxxx (error: 1)`
    return JSON.stringify({
      __REALTIME_TIMESTAMP: String(at(i).getTime() * 1000),
      SYSLOG_IDENTIFIER: 'roundcube',
      PRIORITY: '6',
      _COMM: 'apache2',
      _UID: '33',
      MESSAGE: i % 2 === 0 ? msg : [...Buffer.from(msg)],
    })
  })
  writeFileSync(log, `${recs.join('\n')}\n`)
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(6)})
  assert.match(r.stdout, /blocked 198\.18\.7\.7 on master until 2026-11-25 14:05:00Z/)
})

test('once a log has shown session prefixes, lines without one never count, also in later runs', async (t) => {
  const s = setup(t)
  appendLines(s.log, [f2(at(0), '192.0.2.60')])
  await cli(['hacks', '--config', s.config], {env: nowEnv(0)})
  // Forged lines (as an injected newline in a user name would make them): no <session> prefix.
  const forged = [1, 2, 3, 4, 5, 6, 7].map(
    (i) => `${fileDate(at(i))}: Failed login for victim from 192.0.2.99 in session s${i} (error: 0)`,
  )
  appendLines(s.log, forged)
  const r = await cli(['scan', '--verbose', '--config', s.config], {env: nowEnv(8)})
  assert.match(r.stdout, /no <session> prefix where this log always has one/)
  const rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(8)})
  assert.deepEqual(rows.map((row) => row.ip), ['192.0.2.60'])
})

test('trustedProxies: the client behind the proxy is blocked, never the proxy; headers from others are ignored', async (t) => {
  const s = setup(t)
  writeConfig(s, [s.log], {trustedProxies: ['198.51.100.2']})
  const lines = [0, 1, 2, 3, 4, 5].map(
    (i) => `${fileDate(at(i))}: <tp${i}tp${i}tp> Failed login for d@example.com from 198.51.100.2 (X-Forwarded-For: 192.0.2.250, 203.0.113.50) in session tp${i}tp${i}tpxxxxxxxx (error: 0)`,
  )
  // Without headers the proxy's own address is never counted.
  lines.push(...[0, 1, 2, 3, 4, 5, 6].map((i) => `${fileDate(at(i, 30))}: <tq${i}tq${i}tq> Failed login for e from 198.51.100.2 in session tq${i}tq${i}tqxxxxxxxx (error: 0)`))
  // A client that is not the proxy cannot choose its address with a header.
  lines.push(...[0, 1, 2, 3, 4, 5].map((i) => `${fileDate(at(i, 45))}: <tr${i}tr${i}tr> Failed login for f from 203.0.113.51 (X-Forwarded-For: 192.0.2.251) in session tr${i}tr${i}trxxxxxxxx (error: 0)`))
  appendLines(s.log, lines.sort((a, b) => a.slice(0, 30).localeCompare(b.slice(0, 30))))
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(7)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /blocked 203\.0\.113\.50 on master/)
  assert.match(r.stdout, /blocked 203\.0\.113\.51 on master/)
  assert.doesNotMatch(r.stdout, /198\.51\.100\.2|192\.0\.2\.25[01]/)
})

test('first read of a log: failures older than the window before its newest line do not count; replay counts them', async (t) => {
  const s = setup(t)
  appendLines(s.log, [...burst(at(0), '203.0.113.70', 8, 10), ...burst(at(120), '203.0.113.71', 2)])
  const r = await cli(['scan', '--verbose', '--config', s.config], {env: nowEnv(125)})
  // The longest window (the slow window's 60 minutes) is what a first read counts.
  assert.match(r.stdout, /first read: 8 failed login\(s\) older than 60 min before the log's newest line not counted/)
  const rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(125)})
  assert.deepEqual(rows.map((row) => [row.ip, row.state]), [['203.0.113.71', 'watching']])

  const replay = await cliJson<{replay: {ip: string; at: string; until: string | null}[]}>(
    ['scan', '--dry-run', '--replay', '--log', s.log, '--config', s.config],
    {env: nowEnv(125)},
  )
  assert.deepEqual(replay.replay, [{ip: '203.0.113.70', instance: 'master', at: at(0, 50).toISOString(), until: at(60, 50).toISOString(), rule: 'failures:6/10'}])
  const text = await cli(['scan', '--dry-run', '--replay', '--log', s.log, '--config', s.config])
  assert.match(text.stdout, /would block 203\.0\.113\.70 on master at 2026-11-25 13:00:50Z until 2026-11-25 14:00:50Z by 6 failures within 10 min/)
  assert.match(text.stdout, /replay: 1 block\(s\) of 1 address\(es\) with maxAttempts 6, periodMinutes 10, blockMinutes 60/)
  const misuse = await cli(['scan', '--replay', '--config', s.config])
  assert.equal(misuse.exitCode, 2)
})

test('a glob pattern reads the live logs, not their rotations; rotation between runs loses and repeats nothing', async (t) => {
  const s = setup(t)
  writeConfig(s, [join(s.dir, '*.log')])
  writeFileSync(join(s.dir, 'userlogins.log.1'), `${burst(at(0), '192.0.2.111', 6).join('\n')}\n`)
  appendLines(s.log, burst(at(0), '203.0.113.80', 2))
  await cli(['hacks', '--config', s.config], {env: nowEnv(1)})
  // Two more lines land in the old file after the run, then logrotate renames it.
  appendLines(s.log, burst(at(1), '203.0.113.80', 2))
  renameSync(`${s.log}.1`, `${s.log}.2`)
  renameSync(s.log, `${s.log}.1`)
  writeFileSync(s.log, '')
  appendLines(s.log, burst(at(2), '203.0.113.80', 1))
  const r = await cli(['hacks', '--verbose', '--config', s.config], {env: nowEnv(3)})
  assert.match(r.stdout, /rotated once: finished .*userlogins\.log\.1 from byte/)
  const rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(3)})
  assert.deepEqual(rows.map((row) => [row.ip, row.attempts]), [['203.0.113.80', 5]])
  const missing = setup(t)
  writeConfig(missing, [join(missing.dir, 'nothing-*.log')])
  const w = await cli(['hacks', '--config', missing.config], {env: nowEnv(3)})
  assert.match(w.stderr, /no file matches the log pattern .*nothing-\*\.log/)
})

test('countErrors and resetOnSuccess are honoured', async (t) => {
  const s = setup(t)
  writeConfig(s, [s.log], {countErrors: [0], resetOnSuccess: true})
  appendLines(s.log, [
    ...[0, 1, 2, 3, 4, 5, 6].map((i) => f2(at(i), '203.0.113.90', 'x', 1)),
    ...[0, 1, 2, 3].map((i) => f2(at(i), '203.0.113.91', 'y', 0)),
    `${fileDate(at(4))}: <ok00ok00> Successful login for y (ID: 3) from 203.0.113.91 in session ok00ok00xxxxxxxx`,
    ...[5, 6, 7].map((i) => f2(at(i), '203.0.113.91', 'y', 0)),
  ])
  const r = await cli(['hacks', '--verbose', '--config', s.config], {env: nowEnv(8)})
  assert.match(r.stdout, /203\.0\.113\.91: successful login, 4 earlier failure\(s\) forgotten/)
  assert.doesNotMatch(r.stdout, /^blocked/m)
  const rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(8)})
  assert.deepEqual(rows.map((row) => [row.ip, row.attempts]), [['203.0.113.91', 3]])
})
