/**
 * The nf_tables generation token and the check cache beside the database:
 * anything odd means "list in full", never an error and never a skipped check.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {FirewallError} from '../../src/core/errors.js'
import {CheckCache, oneLater, readGeneration, type Generation} from '../../src/core/firewall/generation.js'
import type {Runner} from '../../src/core/firewall/runner.js'
import {tempDir} from '../helpers/env.js'

const answering = (stdout: string, exitCode = 0): Runner => ({run: async () => ({stdout, stderr: '', exitCode})})

test('the token is boot id, namespace inode and generation; no perl, a failure or odd output give none', async () => {
  const g = await readGeneration(answering('42\n'))
  assert.equal(g?.genid, 42)
  assert.match(g?.token ?? '', /^[0-9a-f-]{36}\/\d+\/42$/)
  assert.equal(await readGeneration(answering('', 3)), null)
  assert.equal(await readGeneration(answering('42 extra\n')), null)
  assert.equal(await readGeneration(answering('')), null)
  const missing: Runner = {
    run: async () => {
      throw new FirewallError('perl not found')
    },
  }
  assert.equal(await readGeneration(missing), null)
})

test('only the very next generation of the same namespace and boot counts as "our own commit alone"', () => {
  const gen = (stem: string, genid: number): Generation => ({token: `${stem}/${genid}`, genid})
  assert.ok(oneLater(gen('boot/7', 41), gen('boot/7', 42)))
  assert.ok(!oneLater(gen('boot/7', 41), gen('boot/7', 43)), 'someone else committed too')
  assert.ok(!oneLater(gen('boot/7', 41), gen('boot/7', 41)), 'nothing was committed')
  assert.ok(!oneLater(gen('boot/7', 41), gen('boot/8', 42)), 'another namespace')
  // The kernel skips 0 when the counter wraps.
  assert.ok(oneLater(gen('boot/7', 0xffff_ffff), gen('boot/7', 1)))
})

test('the check cache: written 0600, read back, and anything odd read as "no entry"', async (t) => {
  const dir = tempDir(t)
  const cache = new CheckCache(join(dir, 'db.json.fwcheck'))
  assert.equal(await cache.read(), null)
  await cache.write({token: 'b/1/5', digest: 'd', sets: {master_v4: 'x'}})
  assert.deepEqual(await cache.read(), {token: 'b/1/5', digest: 'd', sets: {master_v4: 'x'}})
  assert.equal(statSync(cache.path).mode & 0o777, 0o600)
  for (const odd of ['', '{', 'null', '[]', '{"token": 5, "digest": "d"}', '{"token": "t"}']) {
    writeFileSync(cache.path, odd)
    assert.equal(await cache.read(), null, odd)
  }
  writeFileSync(cache.path, '{"token": "t", "digest": "d", "sets": {"a": 1}}')
  assert.deepEqual(await cache.read(), {token: 't', digest: 'd'})
  await cache.clear()
  await cache.clear()
  assert.equal(await cache.read(), null)
})
