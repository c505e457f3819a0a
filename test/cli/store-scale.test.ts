/**
 * The database at scale, through the CLI: a schema 3 database of 210,000
 * entries as rcguard 0.1 left it after a long attack (bench/generate-db.ts:
 * long user names, ten per entry) is migrated by the first `hacks`, which
 * holds it to the default ceiling of 200,000 entries with one warning,
 * dropping only the oldest watching entries; every block is kept, and
 * `list --json` then gives every entry left, in the documented order. Not
 * timed (bench/scale.ts measures): correctness only.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {cli, tempDir, T0} from '../helpers/env.js'
import {generateDb, INSTANCES} from '../../bench/generate-db.js'
import {assertListOrder} from '../helpers/list-order.js'

const N = 210_000
const NOW = T0.getTime()

interface Row {
  ip: string
  state: string
  instance: string | null
  lastSeen: string | null
  blockedUntil: string | null
}

interface OldEntry {
  ip: string
  instance: string
  lastSeen: number
  blockedAt: number | null
  blockedUntil: number | null
  blocks: number
}

test('210,000 entries of schema 3: the first hacks migrates and holds them to 200,000 with one warning, every block kept; list --json gives them all in order', async (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'db'), {mode: 0o700})
  const db = join(dir, 'db', 'db.json')
  await generateDb(db, {entries: N, now: NOW, version: 3})
  const before = statSync(db).size
  const old = (JSON.parse(readFileSync(db, 'utf8')) as {entries: OldEntry[]}).entries
  writeFileSync(join(dir, 'u.log'), '')
  const config = join(dir, 'rcguard.json')
  writeFileSync(config, JSON.stringify({database: db, firewall: {backend: 'none'}, instances: INSTANCES.map((name) => ({name, logs: [join(dir, 'u.log')], ports: [443]}))}))
  const env = {RCGUARD_NOW: new Date(NOW).toISOString()}

  const hacks = await cli(['hacks', '--config', config], {env})
  assert.equal(hacks.exitCode, 0, hacks.stderr)
  const warnings = hacks.stderr.split('\n').filter((l) => l.includes('maxEntries'))
  assert.deepEqual(warnings, [
    `rcguard: warning: the database reached maxEntries (200000): dropped ${N - 200_000} watching entries, oldest first; no block was lost; raise maxEntries in the configuration to keep more`,
  ])
  assert.ok(statSync(db).size < before / 2.5, `${statSync(db).size} bytes against ${before}`)
  assert.equal(statSync(`${db}.v3`).size, before)

  const list = await cli(['list', '--json', '--config', config], {env})
  assert.equal(list.exitCode, 0, list.stderr)
  const rows = JSON.parse(list.stdout) as Row[]
  assert.equal(rows.length, 200_000 + 100, 'every entry left, then the whitelist')
  assertListOrder(rows)
  const listed = new Map(rows.map((r) => [`${r.instance} ${r.ip}`, r]))
  const blocked = old.filter((e) => e.blockedAt !== null)
  for (const e of blocked) {
    const r = listed.get(`${e.instance} ${e.ip}`)
    assert.equal(r?.state, 'blocked', `${e.ip} on ${e.instance} is still blocked`)
    assert.equal(r?.blockedUntil, e.blockedUntil === null ? null : new Date(e.blockedUntil).toISOString())
  }
  assert.equal(rows.filter((r) => r.state === 'blocked').length, blocked.length)
  // What went: watching entries only, none newer than any watching entry kept.
  const gone = old.filter((e) => !listed.has(`${e.instance} ${e.ip}`))
  assert.equal(gone.length, N - 200_000)
  assert.ok(gone.every((e) => e.blockedAt === null && e.blocks === 0), 'only watching entries were dropped')
  const oldestKept = old
    .filter((e) => e.blocks === 0 && e.blockedAt === null && listed.has(`${e.instance} ${e.ip}`))
    .reduce((t, e) => Math.min(t, e.lastSeen), Infinity)
  assert.ok(gone.every((e) => e.lastSeen <= oldestKept), 'the oldest went first')
})
