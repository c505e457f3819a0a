/**
 * A hacks run that changes nothing (the common case, every minute) does not
 * rewrite the database: its inode and modification time stay; a run that
 * reads a new line, ends a block or migrates the file does write it.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, statSync, writeFileSync} from 'node:fs'
import {appendLines, at, cli, f2, nowEnv, setup} from '../helpers/env.js'

function stamp(path: string): string {
  const s = statSync(path, {bigint: true})
  return `${s.ino}:${s.mtimeNs}:${s.size}`
}

test('hacks with nothing new leaves the database file as it was; a new line, an expiry rewrite it', async (t) => {
  const s = setup(t, {blockMinutes: 5})
  appendLines(s.log, Array.from({length: 6}, (_, i) => f2(at(1, i * 10), '192.0.2.50')))
  const first = await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  assert.equal(first.exitCode, 0, first.stderr)
  assert.match(first.stdout, /^blocked 192\.0\.2\.50 /m)
  const written = stamp(s.db)
  for (const min of [2, 3, 4]) {
    const r = await cli(['hacks', '--config', s.config], {env: nowEnv(min)})
    assert.equal(r.exitCode, 0, r.stderr)
    assert.equal(stamp(s.db), written, `the no-op run at minute ${min} rewrote the database`)
  }
  appendLines(s.log, [f2(at(4), '192.0.2.51')])
  await cli(['hacks', '--config', s.config], {env: nowEnv(4)})
  const afterLine = stamp(s.db)
  assert.notEqual(afterLine, written, 'a new line was not saved')
  const expiry = await cli(['hacks', '--config', s.config], {env: nowEnv(8)})
  assert.match(expiry.stdout, /^unblocked 192\.0\.2\.50 /m)
  assert.notEqual(stamp(s.db), afterLine, 'the expiry was not saved')
})

test('an older schema is written (migrated, the old file kept) even by a run with nothing new', async (t) => {
  const s = setup(t)
  await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  const data = JSON.parse(readFileSync(s.db, 'utf8').split('\n').join('')) as Record<string, unknown>
  assert.equal(typeof data.schemaVersion, 'number')
  // A schema 3 file of the same content (its entries are empty).
  writeFileSync(s.db, JSON.stringify({schemaVersion: 3, entries: [], whitelist: [], positions: data.positions, ledger: {twins: [], accounts: []}}))
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(readFileSync(s.db, 'utf8'), /"schemaVersion":4/)
  assert.match(readFileSync(`${s.db}.v3`, 'utf8'), /"schemaVersion":3/)
})
