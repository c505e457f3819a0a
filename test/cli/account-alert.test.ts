/**
 * accountAlert through bin/run.js: 40 addresses failing on one account (each
 * attempt logged in both logs, the name in several spellings) are reported
 * once by hacks, in the digest and by `list --accounts`, across runs; twin
 * lines and never-block addresses do not count; without accountAlert nothing
 * is kept; a name full of terminal controls is printed escaped.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {appendLines, at, cli, f1, f2, nowEnv, setup, digestRecorder} from '../helpers/env.js'

interface AccountJson {
  account: string
  instance: string
  addresses: number
  first: string
  last: string
}

test('40 addresses on one account: one report by hacks, the digest and list --accounts; not again on the next run', async (t) => {
  const s = setup(t)
  const {argv: recorderArgv, recorded} = digestRecorder(s.dir)
  writeFileSync(
    s.config,
    JSON.stringify({
      database: s.db,
      instances: [{name: 'master', logs: [s.errorsLog, s.log], ports: [443]}],
      firewall: {backend: 'none'},
      whitelist: ['127.0.0.0/8', '192.0.2.0/24'],
      accountAlert: {minAddresses: 30, periodMinutes: 10},
      notify: {command: {argv: recorderArgv}},
    }),
  )
  const errors: string[] = []
  const logins: string[] = []
  // The office (whitelisted) fails on the account too: 25 addresses that never count for it.
  for (let i = 0; i < 25; i++) logins.push(f2(at(0, i), `192.0.2.${i + 1}`, 'victim@example.org'))
  // 20 attackers, each attempt in both logs (twins: one attempt each), the name in two spellings.
  for (let i = 0; i < 20; i++) {
    const sp = `a${String(i).padStart(7, '0')}`
    errors.push(f1(at(1, i), `203.0.113.${i + 1}`, 'victim@example.org', sp))
    logins.push(f2(at(1, i), `203.0.113.${i + 1}`, i % 2 === 0 ? 'Victim@Example.org' : 'victim@example.org', 0, sp))
  }
  appendLines(s.errorsLog, errors)
  appendLines(s.log, logins)
  const first = await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  assert.equal(first.exitCode, 0, first.stderr)
  assert.doesNotMatch(first.stdout, /under attack/, '20 real addresses are under 30: neither twins nor the office count')

  // 20 more attackers: the window holds 40.
  const more: string[] = []
  for (let i = 20; i < 40; i++) more.push(f2(at(3, i), `203.0.113.${i + 1}`, ' VICTIM@example.org'))
  appendLines(s.log, more)
  const second = await cli(['hacks', '--config', s.config], {env: nowEnv(4)})
  assert.equal(second.exitCode, 0, second.stderr)
  const lines = second.stdout.split('\n').filter((l) => /under attack/.test(l))
  assert.deepEqual(lines, [
    `account "victim@example.org" on master under attack: 30 addresses failed on it within 10 min (first failure 2026-11-25 13:01:00Z, latest 2026-11-25 13:03:29Z)`,
  ])
  const digests = readFileSync(recorded, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as {accounts?: AccountJson[]})
  assert.equal(digests.length, 1)
  assert.equal(digests[0]?.accounts?.[0]?.account, 'victim@example.org')

  // Still going on: not told again.
  appendLines(s.log, [f2(at(5), '203.0.113.200', 'victim@example.org')])
  const third = await cli(['hacks', '--config', s.config], {env: nowEnv(6)})
  assert.doesNotMatch(third.stdout, /under attack/)
  assert.equal(readFileSync(recorded, 'utf8').trim().split('\n').length, 1)

  const listed = await cli(['list', '--accounts', '--json', '--config', s.config], {env: nowEnv(6)})
  assert.equal(listed.exitCode, 0, listed.stderr)
  const rows = JSON.parse(listed.stdout) as AccountJson[]
  assert.equal(rows.length, 1)
  assert.deepEqual([rows[0]?.account, rows[0]?.instance, rows[0]?.addresses, rows[0]?.first, rows[0]?.last], [
    'victim@example.org',
    'master',
    41,
    '2026-11-25T13:01:00.000Z',
    '2026-11-25T13:05:00.000Z',
  ])
  const table = await cli(['list', '--accounts', '--config', s.config], {env: nowEnv(6)})
  assert.match(table.stdout, /^account +instance +addresses +first failure +last failure +reported$/m)
  assert.match(table.stdout, /^victim@example\.org +master +41 /m)
})

test('an account name of terminal controls is escaped in every output; without accountAlert nothing is kept', async (t) => {
  const s = setup(t, {accountAlert: {minAddresses: 3, periodMinutes: 10}})
  const name = 'x\u001b[2J\u202eroot'
  appendLines(s.log, [1, 2, 3].map((i) => f2(at(0, i), `203.0.113.${i}`, name)))
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(1)})
  assert.equal(r.exitCode, 0, r.stderr)
  const line = r.stdout.split('\n').find((l) => /under attack/.test(l)) ?? ''
  assert.ok(!/[\u001b\u202e]/.test(r.stdout), 'no raw control character reaches the terminal')
  assert.match(line, /account "x\\x1b\[2j\\u\{202e\}root"/)
  const json = await cli(['list', '--accounts', '--json', '--config', s.config], {env: nowEnv(1)})
  assert.ok(!/[\u001b\u202e]/.test(json.stdout))
  assert.equal((JSON.parse(json.stdout) as AccountJson[])[0]?.account, 'x\u001b[2j\u202eroot')

  // Switched off: the next run forgets the accounts, and list says why it shows none.
  writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.errorsLog, s.log], ports: [443]}], firewall: {backend: 'none'}}))
  const off = await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  assert.equal(off.exitCode, 0, off.stderr)
  const none = await cli(['list', '--accounts', '--config', s.config], {env: nowEnv(2)})
  assert.equal(none.stdout.trim(), 'no accounts: accountAlert is not configured')
  assert.equal((JSON.parse(readFileSync(s.db, 'utf8')) as {accounts?: unknown}).accounts, undefined)
})

test('scan --dry-run --replay tells when each account would have been reported, in text and JSON', async (t) => {
  const s = setup(t, {accountAlert: {minAddresses: 4, periodMinutes: 10}})
  appendLines(s.log, [
    ...[1, 2, 3, 4, 5].map((i) => f2(at(0, i * 10), `203.0.113.${i}`, 'bob@example.org')),
    // A second attack on the same account after a quiet hour: reported again.
    ...[1, 2, 3, 4].map((i) => f2(at(90, i), `198.51.100.${i}`, 'BOB@example.org')),
  ])
  const r = await cli(['scan', '--dry-run', '--replay', '--log', s.log, '--config', s.config], {env: nowEnv(200)})
  assert.equal(r.exitCode, 0, r.stderr)
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('would report'))
  assert.deepEqual(lines, [
    'would report at 2026-11-25 13:00:40Z: account "bob@example.org" on master under attack: 4 addresses failed on it within 10 min (first failure 2026-11-25 13:00:10Z, latest 2026-11-25 13:00:40Z)',
    'would report at 2026-11-25 14:30:04Z: account "bob@example.org" on master under attack: 4 addresses failed on it within 10 min (first failure 2026-11-25 14:30:01Z, latest 2026-11-25 14:30:04Z)',
  ])
  const json = await cli(['scan', '--dry-run', '--replay', '--json', '--log', s.log, '--config', s.config], {env: nowEnv(200)})
  const doc = JSON.parse(json.stdout) as {accountAlerts: {account: string; at: string; addresses: number}[]}
  assert.deepEqual(doc.accountAlerts.map((a) => [a.account, a.at, a.addresses]), [
    ['bob@example.org', '2026-11-25T13:00:40.000Z', 4],
    ['bob@example.org', '2026-11-25T14:30:04.000Z', 4],
  ])
})

test('accountAlert.block: the addresses that failed twice on the attacked account are blocked by hacks, named by the account rule in hacks and list; the once-only ones and the whitelisted office are not', async (t) => {
  const s = setup(t)
  writeFileSync(
    s.config,
    JSON.stringify({
      database: s.db,
      instances: [{name: 'master', logs: [s.log], ports: [443]}],
      firewall: {backend: 'none'},
      whitelist: ['127.0.0.0/8', '192.0.2.0/24'],
      windows: [],
      accountAlert: {minAddresses: 20, periodMinutes: 10, block: true},
    }),
  )
  const logins: string[] = []
  // The office fails on it twice from each of 5 addresses: never counted, never blocked.
  for (let i = 0; i < 10; i++) logins.push(f2(at(0, i), `192.0.2.${(i % 5) + 1}`, 'ceo@example.org'))
  // 30 attackers, every third one twice.
  let n = 10
  for (let i = 0; i < 30; i++) for (let k = 0; k < (i % 3 === 0 ? 2 : 1); k++) logins.push(f2(at(0, n++), `203.0.113.${i + 1}`, 'ceo@example.org'))
  appendLines(s.log, logins)
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  assert.equal(r.exitCode, 0, r.stderr)
  const blocked = r.stdout.split('\n').filter((l) => l.startsWith('blocked '))
  assert.deepEqual(
    blocked.map((l) => l.split(' ')[1]),
    [1, 4, 7, 10, 13, 16, 19, 22, 25, 28].map((i) => `203.0.113.${i}`),
  )
  assert.ok(blocked.every((l) => l.includes(' by 20 addresses on one account within 10 min ')), blocked.join('\n'))
  assert.match(r.stdout, /account "ceo@example.org" on master under attack/)
  const rows = JSON.parse((await cli(['list', '--json', '--state', 'blocked', '--config', s.config], {env: nowEnv(2)})).stdout) as {ip: string; rule: string}[]
  assert.equal(rows.length, 10)
  assert.ok(rows.every((row) => row.rule === 'account:20/10'))
  const table = await cli(['list', '--state', 'blocked', '--config', s.config], {env: nowEnv(2)})
  assert.match(table.stdout, /20 on account in 10m/)
})
