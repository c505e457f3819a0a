/**
 * Issue 10 end to end through bin/run.js: each failed login counts once
 * against its real sender across runs, whatever the client typed. Each test
 * names the hole it closes; each failed on the code before the fix.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {appendLines, at, cli, cliJson, f1, f2, fileDate, nowEnv, setup} from '../helpers/env.js'

interface Row {
  ip: string
  state: string
  attempts: number
}

function configure(s: ReturnType<typeof setup>, logs: string[], extra: Record<string, unknown> = {}): void {
  writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs, ports: [443]}], firewall: {backend: 'none'}, ...extra}))
}

const ips = async (s: ReturnType<typeof setup>, min: number): Promise<Row[]> => cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(min)})

test('an attempt in both logs counts once for any burst size (30 attempts: 30, not 60), errors read first or last', async (t) => {
  for (const order of ['errors first', 'userlogins first']) {
    const s = setup(t)
    const errors = join(s.dir, 'errors.log')
    const logs = order === 'errors first' ? [errors, s.log] : [s.log, errors]
    configure(s, logs, {maxAttempts: 1000})
    const sessions = Array.from({length: 30}, (_, i) => `b${String(i).padStart(2, '0')}b${String(i).padStart(2, '0')}bb`)
    appendLines(errors, sessions.map((sp, i) => f1(at(0, i * 10), '203.0.113.77', 'alice@example.com', sp)))
    appendLines(s.log, sessions.map((sp, i) => f2(at(0, i * 10 + 1), '203.0.113.77', 'alice@example.com', 0, sp)))
    const r = await cli(['scan', '--config', s.config], {env: nowEnv(6)})
    assert.equal(r.exitCode, 0, r.stderr)
    const rows = await ips(s, 6)
    assert.equal(rows.find((row) => row.ip === '203.0.113.77')?.attempts, 30, `${order}: ${JSON.stringify(rows)}`)
  }
})

test("a rate-limit refusal that other addresses' failures caused never counts against the one refused; the address's own flood does", async (t) => {
  const s = setup(t)
  configure(s, [s.log])
  // Three attackers lock alice's account; her owner then gets error 4, again and again.
  const lines = [
    f2(at(0, 0), '203.0.113.1', 'alice'),
    f2(at(0, 5), '203.0.113.2', 'alice'),
    f2(at(0, 10), '203.0.113.3', 'alice'),
    ...Array.from({length: 8}, (_, i) => f2(at(0, 15 + i * 5), '198.51.100.40', 'alice', 4)),
    // bob's account, locked by one address alone, which then keeps trying: its own flood.
    ...Array.from({length: 3}, (_, i) => f2(at(2, i), '203.0.113.60', 'bob')),
    ...Array.from({length: 3}, (_, i) => f2(at(2, 10 + i), '203.0.113.60', 'bob', 4)),
  ]
  appendLines(s.log, lines)
  const r = await cli(['hacks', '--verbose', '--config', s.config], {env: nowEnv(4)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /refused by login_rate_limit \(error 4\) after failures on this account from 203\.0\.113\.1, 203\.0\.113\.2, 203\.0\.113\.3: not counted against 198\.51\.100\.40/)
  const rows = await ips(s, 4)
  assert.equal(rows.find((row) => row.ip === '198.51.100.40'), undefined, JSON.stringify(rows))
  assert.equal(rows.find((row) => row.ip === '203.0.113.60')?.state, 'blocked', JSON.stringify(rows))
})

test('a forged future date in a user name does not make a first read take real failures for history', async (t) => {
  const s = setup(t)
  configure(s, [s.log])
  const lines = [
    `${fileDate(at(0))}: <c1c1c1c1> Failed login for x`,
    `[25-Dec-2099 23:59:59 +0000]: Failed login for v from 192.0.2.99 in session zz (error: 0)`,
    'y from 203.0.113.70 in session c1c1c1c1c1c1c1c1 (error: 0)',
    ...Array.from({length: 6}, (_, i) => f2(at(1, i * 10), '203.0.113.70')),
  ]
  appendLines(s.log, lines)
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /^blocked 203\.0\.113\.70 /m)
  assert.ok(!(await ips(s, 3)).some((row) => row.ip === '192.0.2.99'))
})

test('a warning a client can provoke is told at most once an hour, the lines held back summed into the next; dry runs tell every time', async (t) => {
  const s = setup(t)
  configure(s, [s.log])
  // A direct client whose X-Forwarded-For imitates a second address field: userlogins alone cannot tell.
  const ambiguous = (d: Date, sp: string): string =>
    `${fileDate(d)}: <${sp}> Failed login for v from 192.0.2.66 (X-Real-IP: 1 from 192.0.2.40 (X-Forwarded-For: 7) in session ${sp}abcdefgh (error: 0)`
  appendLines(s.log, [ambiguous(at(0), 'd1d1d1d1')])
  const first = await cli(['hacks', '--config', s.config], {env: nowEnv(1)})
  assert.match(first.stderr, /1 login line not counted: a user name or an X-Forwarded-For\/X-Real-IP header imitates/)
  appendLines(s.log, [ambiguous(at(2), 'd2d2d2d2'), ambiguous(at(3), 'd3d3d3d3')])
  // A dry run (an admin at the terminal) is told every time.
  const dry = await cli(['hacks', '--dry-run', '--config', s.config], {env: nowEnv(4)})
  assert.match(dry.stderr, /2 login lines not counted: a user name or an X-Forwarded-For\/X-Real-IP header imitates/)
  const second = await cli(['hacks', '--config', s.config], {env: nowEnv(4)})
  assert.equal(second.stderr, '', 'held back within the hour')
  appendLines(s.log, [ambiguous(at(70), 'd4d4d4d4')])
  const later = await cli(['hacks', '--config', s.config], {env: nowEnv(71)})
  assert.match(later.stderr, /3 login lines not counted: .*\(2 of them held back since the warning of 2026-11-25T13:01:00\.000Z\)/)
})

test('without session prefixes a user name can end with a whole forged userlogins line: those lines are reported, not counted; the errors log still counts', async (t) => {
  const s = setup(t)
  const errors = join(s.dir, 'errors.log')
  configure(s, [errors, s.log])
  // Roundcube with log_session_id = 0. The user name "x from 192.0.2.99 in session a (error: 0)\n[date]: Failed login for y"
  // from 203.0.113.70 makes two lines, the first naming 192.0.2.99, both looking like Roundcube's.
  const d = fileDate(at(1))
  appendLines(s.log, [`${d}: Failed login for x from 192.0.2.99 in session a (error: 0)`, `${d}: Failed login for y from 203.0.113.70 in session s1 (error: 0)`])
  appendLines(errors, Array.from({length: 6}, (_, i) => `${fileDate(at(1, i * 10))}: IMAP Error: Login failed for x against localhost from 203.0.113.71. AUTHENTICATE PLAIN: Authentication failed. in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (POST /?_task=login&_action=login)`))
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /^blocked 203\.0\.113\.71 /m)
  assert.match(r.stderr, /shows no <session> prefixes .* only errors-log lines are counted/)
  assert.ok(!(await ips(s, 3)).some((row) => row.ip === '192.0.2.99'))
})
