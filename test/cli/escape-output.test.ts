/**
 * What the attacker and the filesystem choose never reaches a terminal or
 * cron mail raw: user names with line separators, bidi overrides and ESC
 * sequences in the cron report, the list table, --verbose and --json, and
 * ESC sequences in the names of globbed log files in --verbose and warnings.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {appendLines, at, cli, f2, nowEnv, setup, tempDir} from '../helpers/env.js'

/** Characters no output of rcguard may carry raw (what a terminal or mail reader acts on). */
// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00a0\u061c\u180e\u2000-\u200f\u2028-\u202e\u2060-\u2069\u3000\ufeff]|[\ud800-\udfff]/u

function assertClean(text: string, what: string): void {
  const m = RAW.exec(text)
  assert.equal(m, null, `${what}: raw U+${(m?.[0].codePointAt(0) ?? 0).toString(16)} in ${JSON.stringify(text.slice(Math.max(0, (m?.index ?? 0) - 20), (m?.index ?? 0) + 20))}`)
}

const HOSTILE = [
  'admin\u2028rcguard: unblocked 192.0.2.66',
  'gro.elpmaxe@\u202eadmin',
  'x\u001b[2J\u001b]0;owned\u0007',
  'zero\u200bwidth\u2066iso\u2069',
  'nbsp\u00a0\u3000sp',
]

test('hostile user names: the cron report, the list table, --verbose and --json show them escaped', async (t) => {
  const s = setup(t)
  const ip = '203.0.113.9'
  const lines = Array.from({length: 6}, (_, i) => f2(at(0, i * 10), ip, HOSTILE[i % HOSTILE.length]))
  appendLines(s.log, lines)

  const verbose = await cli(['scan', '--dry-run', '--verbose', '--config', s.config], {env: nowEnv(2)})
  assert.equal(verbose.exitCode, 0, verbose.stderr)
  assertClean(verbose.stdout + verbose.stderr, 'scan --dry-run --verbose')
  assert.match(verbose.stdout, /admin\\u\{2028\}rcguard: unblocked/)
  assert.match(verbose.stdout, /gro\.elpmaxe@\\u\{202e\}admin/)

  const run = await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  assert.equal(run.exitCode, 0, run.stderr)
  assert.match(run.stdout, /blocked 203\.0\.113\.9/)
  assertClean(run.stdout + run.stderr, 'hacks (the cron report)')
  // The forged second line stays inside the first.
  assert.equal(run.stdout.split('\n').filter((l) => /unblocked 192\.0\.2\.66/.test(l)).length, run.stdout.includes('192.0.2.66') ? 1 : 0)
  assert.ok(!/^rcguard: unblocked/m.test(run.stdout))

  const table = await cli(['list', '--config', s.config], {env: nowEnv(3)})
  assert.equal(table.exitCode, 0, table.stderr)
  assert.match(table.stdout, /203\.0\.113\.9/)
  assertClean(table.stdout, 'list')

  const json = await cli(['list', '--json', '--config', s.config], {env: nowEnv(3)})
  assert.equal(json.exitCode, 0, json.stderr)
  assertClean(json.stdout, 'list --json')
  // The JSON still carries the exact data.
  const rows = JSON.parse(json.stdout) as {ip: string; lastUser: string | null}[]
  const row = rows.find((r) => r.ip === ip)
  assert.ok(row !== undefined && HOSTILE.includes(row.lastUser ?? ''), JSON.stringify(row))

  const events = await cli(['scan', '--dry-run', '--replay', '--log', s.log, '--json', '--config', s.config], {env: nowEnv(3)})
  assert.equal(events.exitCode, 0, events.stderr)
  assertClean(events.stdout, 'scan --json')
  const doc = JSON.parse(events.stdout) as {events: {user: string}[]}
  assert.deepEqual(
    doc.events.map((e) => e.user),
    lines.map((_, i) => HOSTILE[i % HOSTILE.length]),
  )
})

test('log file names from a glob: ESC sequences in them are escaped in --verbose and in warnings', async (t) => {
  const dir = tempDir(t)
  const evil = join(dir, 'a\u001b]0;owned\u0007\u001b[2J.log')
  const long = join(dir, 'b\u001b[31m\u2028.log')
  writeFileSync(evil, `${f2(at(0), '198.51.100.4', 'bob')}\n`)
  // A line longer than rcguard reads is skipped with a warning that names the file.
  writeFileSync(long, `${'x'.repeat(70_000)}\n${f2(at(0), '198.51.100.5', 'carol')}\n`)
  const config = join(dir, 'rcguard.yml')
  writeFileSync(
    config,
    JSON.stringify({database: join(dir, 'db', 'db.json'), firewall: {backend: 'none'}, instances: [{name: 'master', logs: [join(dir, '*.log')], ports: [443]}]}),
  )
  const r = await cli(['hacks', '--dry-run', '--verbose', '--config', config], {env: nowEnv(1)})
  assert.equal(r.exitCode, 0, r.stderr)
  assertClean(r.stdout, 'stdout')
  assertClean(r.stderr, 'stderr')
  assert.match(r.stdout, /a\\x1b\]0;owned\\x07\\x1b\[2J\.log: \d+ new bytes/)
  assert.match(r.stderr, /^rcguard: warning: .*b\\x1b\[31m\\u\{2028\}\.log: skipped 1 line/m)
})
