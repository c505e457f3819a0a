/**
 * The caching store of `rcguard watch` (src/core/store/cache.ts): a read
 * after its own write is served from memory; a write by anyone else (another
 * process's store, an admin's edit in place) is read from the file; data a
 * failed cycle changed without saving is never served.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {appendFileSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {CachingStore} from '../../src/core/store/cache.js'
import {JsonStore} from '../../src/core/store/json-store.js'
import {newEntry} from '../../src/core/decisions/decide.js'
import {tempDir} from '../helpers/env.js'

const T = Date.UTC(2026, 10, 25, 13, 0, 0)

test('a read after its own write comes from memory, the same object; a write of another store is read from the file', async (t) => {
  const db = join(tempDir(t), 'db', 'db.json')
  const cached = new CachingStore(new JsonStore(db))
  const data = await cached.read()
  data.entries.push(newEntry('192.0.2.1', 'master', T))
  await cached.write(data)
  const again = await cached.read()
  assert.equal(again, data)
  assert.deepEqual(cached.reads, {cached: 1, file: 1})
  await cached.write(again)

  const other = new JsonStore(db)
  const theirs = await other.read()
  theirs.entries.push(newEntry('192.0.2.2', 'master', T))
  await other.write(theirs)
  const fresh = await cached.read()
  assert.notEqual(fresh, data)
  assert.deepEqual(fresh.entries.map((e) => e.ip), ['192.0.2.1', '192.0.2.2'])
  assert.deepEqual(cached.reads, {cached: 1, file: 2})
})

test('a change in place (same inode) is read from the file', async (t) => {
  const db = join(tempDir(t), 'db', 'db.json')
  const cached = new CachingStore(new JsonStore(db))
  const data = await cached.read()
  await cached.write(data)
  const text = readFileSync(db, 'utf8')
  writeFileSync(db, text.replace('"entries":[]', `"entries":[${JSON.stringify(newEntry('192.0.2.3', 'master', T))}]`))
  appendFileSync(db, ' ')
  const read = await cached.read()
  assert.deepEqual(read.entries.map((e) => e.ip), ['192.0.2.3'])
})

test('data changed by a cycle that failed before saving is not served: the next read is the file', async (t) => {
  const db = join(tempDir(t), 'db', 'db.json')
  const cached = new CachingStore(new JsonStore(db))
  await cached.write(await cached.read())
  const lent = await cached.read()
  lent.entries.push(newEntry('192.0.2.4', 'master', T))
  // No write: the cycle failed.
  const next = await cached.read()
  assert.notEqual(next, lent)
  assert.deepEqual(next.entries, [])
})

test('data read and left unchanged (not written) is served again from memory while the file is the same', async (t) => {
  const db = join(tempDir(t), 'db', 'db.json')
  const cached = new CachingStore(new JsonStore(db))
  await cached.write(await cached.read())
  const first = await cached.read()
  cached.unchanged(first)
  assert.equal(await cached.read(), first)
  cached.unchanged(first)
  const other = new JsonStore(db)
  await other.write(await other.read())
  assert.notEqual(await cached.read(), first)
})
