/**
 * `rcguard list` at scale: 150,000 entries (cli-table3 overflowed the stack
 * from about 125,000 rows and took minutes well before) give a summary, the
 * first --limit rows, every row with --limit 0, and every row as JSON, in
 * the documented order. Not timed: correctness only.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {cli, tempDir, T0} from '../helpers/env.js'
import {assertListOrder} from '../helpers/list-order.js'

interface Row {
  ip: string
  state: string
  instance: string | null
  lastSeen: string | null
}

const N = 150_000
const NOW = {RCGUARD_NOW: new Date(T0.getTime() + 30_000).toISOString()}

/** A database of n entries: every third blocked for an hour, the others watching; last seen spread over 5000 s. */
function database(t: {after: (fn: () => void) => void}, n: number, instances = ['master']): {config: string; ips: string[]} {
  const dir = tempDir(t)
  const now = T0.getTime()
  const ips: string[] = []
  const entries = []
  for (let i = 0; i < n; i++) {
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    ips.push(ip)
    const blocked = i % 3 === 0
    const seen = now - (i % 5000) * 1000
    entries.push({
      ip,
      instance: instances[i % instances.length],
      failures: blocked ? [] : [seen],
      attempts: blocked ? 6 : 1,
      firstSeen: seen - 60_000,
      lastSeen: seen,
      lastUser: `user${i}@example.org`,
      blockedAt: blocked ? seen : null,
      blockedUntil: blocked ? now + 3_600_000 : null,
      blocks: blocked ? 1 : 0,
      lastBlockEnd: null,
      users: [`user${i}@example.org`],
      comment: null,
    })
  }
  mkdirSync(join(dir, 'db'), {mode: 0o700})
  writeFileSync(join(dir, 'db', 'db.json'), JSON.stringify({schemaVersion: 3, entries, whitelist: [], positions: {}, ledger: {twins: [], accounts: []}}))
  writeFileSync(join(dir, 'u.log'), '')
  const config = join(dir, 'rcguard.json')
  writeFileSync(config, JSON.stringify({database: join(dir, 'db', 'db.json'), firewall: {backend: 'none'}, instances: instances.map((name) => ({name, logs: [join(dir, 'u.log')], ports: [443]}))}))
  return {config, ips}
}

test('list at 150,000 entries: a summary and the first 50 rows; --limit 0 every row; --json every row, in order', async (t) => {
  const {config, ips} = database(t, N)

  const first = await cli(['list', '--config', config], {env: NOW})
  assert.equal(first.exitCode, 0, first.stderr)
  const lines = first.stdout.trimEnd().split('\n')
  assert.equal(lines[0], '50000 blocked, 100000 watching, 0 whitelisted')
  assert.match(lines[1] ?? '', /^address +state +attempts +first seen +last seen +blocked until +blocked by +instance +last user \/ comment$/)
  assert.equal(lines.length, 2 + 50 + 1)
  assert.ok(lines.slice(2, 52).every((l) => / blocked +6 /.test(l)), 'the first rows are the blocked ones')
  assert.equal(lines[52], 'first 50 of 150000 rows shown: --limit 0 shows all, --state, --instance or --ip narrow them')

  const all = await cli(['list', '--limit', '0', '--config', config], {env: NOW})
  assert.equal(all.exitCode, 0, all.stderr)
  const rows = all.stdout.trimEnd().split('\n').slice(2)
  assert.equal(rows.length, N)
  assert.deepEqual(new Set(rows.map((l) => l.split(' ')[0])), new Set(ips))
  // Columns stay aligned over every row: the state column starts at the same place in each.
  const at = (lines[1] ?? '').indexOf('state')
  assert.ok(rows.every((l) => /^(blocked|watching)/.test(l.slice(at))), 'aligned')

  const json = await cli(['list', '--json', '--config', config], {env: NOW})
  assert.equal(json.exitCode, 0, json.stderr)
  const doc = JSON.parse(json.stdout) as Row[]
  assert.equal(doc.length, N)
  assert.equal(doc.filter((r) => r.state === 'blocked').length, 50_000)
  assertListOrder(doc)
  // The table's rows are the JSON's, in the same order.
  assert.deepEqual(
    rows.slice(0, 1000).map((l) => l.split(' ')[0]),
    doc.slice(0, 1000).map((r) => r.ip),
  )

  const ten = await cli(['list', '--json', '--limit', '10', '--config', config], {env: NOW})
  assert.deepEqual(JSON.parse(ten.stdout), doc.slice(0, 10))
})

test('list: the summary counts every state per instance when there are several; an empty list says so', async (t) => {
  const {config} = database(t, 30, ['master', 'other'])
  const r = await cli(['list', '--config', config], {env: NOW})
  assert.equal(r.exitCode, 0, r.stderr)
  const lines = r.stdout.split('\n')
  assert.equal(lines[0], '10 blocked, 20 watching, 0 whitelisted')
  assert.equal(lines[1], '  master: 5 blocked, 10 watching')
  assert.equal(lines[2], '  other: 5 blocked, 10 watching')
  assert.ok(!r.stdout.includes('rows shown'), 'all 30 rows fit the default limit')
  const none = await cli(['list', '--ip', '192.0.2.0/24', '--config', config], {env: NOW})
  assert.equal(none.stdout, 'no entries: nothing blocked, watched or whitelisted matches')
  const bad = await cli(['list', '--limit', '-1', '--config', config], {env: NOW})
  assert.equal(bad.exitCode, 2)
})
