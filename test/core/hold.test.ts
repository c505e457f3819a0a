/**
 * A run that reads a log while Roundcube writes an entry to it (the kernel
 * grows the file page by page during one write) must not decide on the part
 * it saw: that part may end with a piece of a user name that imitates a whole
 * line naming a victim. The growth is made here from the scan's progress
 * hook, which runs after the reader took the file's size and read its bytes.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {appendFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {validateConfig} from '../../src/core/config/config.js'
import {createBackend, ExecaRunner} from '../../src/core/firewall/index.js'
import type {GuardContext} from '../../src/core/run/context.js'
import {scan} from '../../src/core/run/pipeline.js'
import {JsonStore} from '../../src/core/store/json-store.js'
import {at, f2, fileDate, tempDir} from '../helpers/env.js'

function context(dir: string, now: number): GuardContext {
  const config = validateConfig(
    {database: join(dir, 'db.json'), instances: [{name: 'master', logs: [join(dir, 'userlogins.log')], ports: [443]}], firewall: {backend: 'none'}},
    'test',
    dir,
  )
  return {config, store: new JsonStore(config.database), firewall: createBackend(config, new ExecaRunner()), now: () => now}
}

test('the last entry of a log that grew while it was read is read again next run, whole: its first piece never counts', async (t) => {
  const dir = tempDir(t)
  const log = join(dir, 'userlogins.log')
  writeFileSync(log, `${f2(at(0), '203.0.113.9')}\n`)
  await scan(context(dir, at(1).getTime()), {dryRun: false})
  // What the run sees of the write: the entry's first line, which ends like a whole line for 192.0.2.99.
  appendFileSync(log, `${fileDate(at(5))}: <a7a7a7a7> Failed login for x from 192.0.2.99 in session a7a7a7a7a7a7a7a7 (error: 0)\n`)
  let grown = false
  const first = await scan(context(dir, at(5).getTime()), {
    dryRun: false,
    collect: true,
    // The rest of the write lands while the run reads.
    progress: () => {
      if (grown) return
      grown = true
      appendFileSync(log, 'y from 203.0.113.50 in session a7a7a7a7a7a7a7a7 (error: 0)\n')
    },
  })
  assert.ok(grown)
  assert.deepEqual(first.events.filter((e) => e.counted).map((e) => e.ip), [], 'nothing of the entry seen in part is decided')
  assert.ok(first.files[0]?.notes.some((n) => /may still be being written/.test(n)), JSON.stringify(first.files))
  const second = await scan(context(dir, at(6).getTime()), {dryRun: false, collect: true})
  assert.deepEqual(second.events.map((e) => [e.ip, e.counted]), [['203.0.113.50', true]], 'read again whole: the real sender, once')
})

test('a log that did not grow while it was read is decided at once, its newest entry too', async (t) => {
  const dir = tempDir(t)
  const log = join(dir, 'userlogins.log')
  writeFileSync(log, `${f2(at(0), '203.0.113.9')}\n`)
  await scan(context(dir, at(1).getTime()), {dryRun: false})
  appendFileSync(log, `${f2(at(5), '203.0.113.10')}\n`)
  const r = await scan(context(dir, at(5).getTime()), {dryRun: false, collect: true})
  assert.deepEqual(r.events.map((e) => [e.ip, e.counted]), [['203.0.113.10', true]])
})
