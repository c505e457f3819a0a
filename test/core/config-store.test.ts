import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, statSync, writeFileSync, mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {loadConfig, validateConfig} from '../../src/core/config/config.js'
import {ConfigError, StoreError, BusyError} from '../../src/core/errors.js'
import {JsonStore} from '../../src/core/store/json-store.js'
import {emptyData} from '../../src/core/store/schema.js'
import {tempDir} from '../helpers/env.js'

test('defaults: 6 attempts in 10 minutes, 60 minute blocks, master instance on 80/443', async (t) => {
  const f = join(tempDir(t), 'c.yml')
  writeFileSync(f, '# empty\n')
  const {config} = await loadConfig(f, true)
  assert.equal(config.maxAttempts, 6)
  assert.equal(config.periodMinutes, 10)
  assert.equal(config.blockMinutes, 60)
  assert.equal(config.enabled, true)
  assert.equal(config.database, '/var/lib/rcguard/db.json')
  assert.deepEqual(config.whitelist, ['127.0.0.0/8', '::1'])
  assert.deepEqual(config.instances[0]?.ports, [80, 443])
  assert.equal(config.firewall.backend, 'iptables')
})

test('relative paths are relative to the config file; JSON is accepted', async (t) => {
  const dir = tempDir(t)
  const f = join(dir, 'c.json')
  writeFileSync(f, JSON.stringify({database: 'db.json', instances: [{name: 'a', logs: ['x.log'], ports: [443]}]}))
  const {config} = await loadConfig(f, true)
  assert.equal(config.database, join(dir, 'db.json'))
  assert.deepEqual(config.instances[0]?.logs.map((l) => l.path), [join(dir, 'x.log')])
  assert.equal(config.instances[0]?.logs[0]?.format, 'auto')
})

test('bad values and unknown keys are refused with the key path', async (t) => {
  const dir = tempDir(t)
  const cases: [string, RegExp][] = [
    ['maxAtempts: 5\n', /unknown key maxAtempts/],
    ['instances:\n  - name: m\n    logs: [a]\n    ports: [80, 70000]\n', /instances\.0\.ports\.1/],
    ['whitelist: [10.0.0.0/33]\n', /whitelist\.0: not an IPv4\/IPv6 address or CIDR/],
    ['firewall: {backend: pf}\n', /firewall\.backend/],
    ['instances:\n  - name: "bad name!"\n    logs: [a]\n    ports: [80]\n', /instances\.0\.name/],
    ['maxAttempts: [1\n', /not valid YAML/],
  ]
  for (const [text, re] of cases) {
    const f = join(dir, 'c.yml')
    writeFileSync(f, text)
    await assert.rejects(loadConfig(f, true), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err))
      assert.match(err.message, re)
      assert.ok(!err.message.includes('\n'), 'one line')
      return true
    })
  }
})

test('an explicitly named missing config is an error; the missing default path means defaults', async (t) => {
  const dir = tempDir(t)
  await assert.rejects(loadConfig(join(dir, 'nope.yml'), true), /does not exist/)
  const {path} = await loadConfig(join(dir, 'nope.yml'), false)
  assert.equal(path, null)
})

test('store: missing reads empty; writes are 0600 in a 0700 directory; round trip', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'sub', 'db.json')
  const store = new JsonStore(path)
  assert.deepEqual(await store.read(), emptyData())
  const data = emptyData()
  data.whitelist.push({cidr: '192.0.2.0/24', comment: 'x', added: 1})
  await store.withLock({wait: true}, () => store.write(data))
  assert.equal(statSync(path).mode & 0o777, 0o600)
  assert.equal(statSync(join(dir, 'sub')).mode & 0o777, 0o700)
  assert.deepEqual(await new JsonStore(path).read(), data)
})

test('store: corrupt, empty and invalid files are refused and left byte-identical', async (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'x'))
  for (const content of ['{"schemaVersion":1,"entries":[', '', '{"schemaVersion":1,"entries":"no","whitelist":[],"positions":{}}', '[1,2]']) {
    const path = join(dir, 'db.json')
    writeFileSync(path, content)
    await assert.rejects(new JsonStore(path).read(), (err: unknown) => {
      assert.ok(err instanceof StoreError)
      assert.match(err.message, /db\.json/)
      assert.match(err.message, /left untouched/)
      return true
    })
    assert.equal(readFileSync(path, 'utf8'), content)
  }
})

test('store lock: a second holder gives up at once when not waiting', async (t) => {
  const path = join(tempDir(t), 'db.json')
  const a = new JsonStore(path)
  const b = new JsonStore(path)
  await a.withLock({wait: false}, async () => {
    await assert.rejects(b.withLock({wait: false}, async () => 1), (err: unknown) => err instanceof BusyError)
  })
  assert.equal(await b.withLock({wait: false}, async () => 2), 2)
})

test('store: a temporary file left by a killed writer is removed by the next write; a live writer\'s is kept', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'db.json')
  const {existsSync} = await import('node:fs')
  const orphan = join(dir, '.db.json.999999.0123abcd.tmp')
  const live = join(dir, `.db.json.${process.ppid}.0123abcd.tmp`)
  writeFileSync(orphan, 'half a database')
  writeFileSync(live, 'another writer at work')
  await new JsonStore(path).write(emptyData())
  assert.equal(existsSync(orphan), false)
  assert.equal(existsSync(live), true)
  assert.deepEqual(await new JsonStore(path).read(), emptyData())
})

test('networkBlock.ipv6Prefix no shorter than firewall.ipv6Prefix is refused: such a network would be one entry, never a swarm', () => {
  const base = {instances: [{name: 'master', logs: ['/var/log/roundcube/userlogins.log'], ports: [443]}]}
  assert.throws(
    () => validateConfig({...base, firewall: {ipv6Prefix: 64}, networkBlock: {ipv6Prefix: 64, minAddresses: 10, periodMinutes: 60}}, 'test', '/'),
    /networkBlock\.ipv6Prefix: must be shorter than firewall\.ipv6Prefix \(64\)/,
  )
  validateConfig({...base, firewall: {ipv6Prefix: 64}, networkBlock: {ipv6Prefix: 48, minAddresses: 10, periodMinutes: 60}}, 'test', '/')
  validateConfig({...base, networkBlock: {ipv6Prefix: 64, minAddresses: 10, periodMinutes: 60}}, 'test', '/')
})
