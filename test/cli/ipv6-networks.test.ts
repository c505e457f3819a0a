/**
 * firewall.ipv6Prefix through bin/run.js: IPv6 failures count against the
 * network of the prefix, and list, unblock, block, whitelist, the hacks
 * report and the notification digest all speak of that network. Older
 * per-address entries are merged into it. Backend none, except for dry runs
 * that print the rule set.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {newEntry} from '../../src/core/decisions/decide.js'
import {emptyData} from '../../src/core/store/schema.js'
import {appendLines, at, cli, cliJson, f2, nowEnv, setup, T0} from '../helpers/env.js'

interface Row {
  ip: string
  state: string
  instance: string | null
  attempts: number
  blocks: number
}

interface Change {
  done: string[]
  notFound: string[]
}

/** One failure from each address, 20 s apart. */
function spread(ips: string[], min = 0): string[] {
  return ips.map((ip, i) => f2(at(min, i * 20), ip))
}

const SIX = [1, 2, 3, 4, 5, 6].map((h) => `2001:db8:1:2::${h.toString(16)}`)

function configure(s: ReturnType<typeof setup>, extra: Record<string, unknown> = {}, firewall: Record<string, unknown> = {}): void {
  writeFileSync(
    s.config,
    JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'none', ipv6Prefix: 64, ...firewall}, ...extra}),
  )
}

test('six addresses of one /64 are blocked as the /64: hacks, list, list --ip of a neighbour, unblock of a neighbour', async (t) => {
  const s = setup(t)
  configure(s)
  appendLines(s.log, spread(SIX))
  const h = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(h.exitCode, 0, h.stderr)
  assert.match(h.stdout, /^blocked 2001:db8:1:2::\/64 on master until 2026-11-25 14:01:40Z by 6 failures within 10 min \(6 failed logins/m)
  const rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(3)})
  assert.deepEqual(rows.map((r) => [r.ip, r.state, r.attempts]), [['2001:db8:1:2::/64', 'blocked', 6]])
  const table = await cli(['list', '--config', s.config], {env: nowEnv(3)})
  assert.match(table.stdout, /^2001:db8:1:2::\/64 +blocked /m)
  // A neighbour that never failed, in the same /64; an address and a network of another /64.
  const neighbour = '2001:db8:1:2:ffff::7'
  assert.deepEqual((await cliJson<Row[]>(['list', '--ip', neighbour, '--config', s.config], {env: nowEnv(3)})).map((r) => r.ip), ['2001:db8:1:2::/64'])
  assert.deepEqual((await cliJson<Row[]>(['list', '--ip', '2001:db8:1::/48', '--config', s.config], {env: nowEnv(3)})).map((r) => r.ip), ['2001:db8:1:2::/64'])
  assert.deepEqual(await cliJson<Row[]>(['list', '--ip', '2001:db8:1:3::7', '--config', s.config], {env: nowEnv(3)}), [])
  const u = await cliJson<Change>(['unblock', neighbour, '--config', s.config], {env: nowEnv(4)})
  assert.deepEqual(u.done, [`${neighbour}: network 2001:db8:1:2::/64 unblocked and forgotten; it is blocked again if it misbehaves again`])
  assert.deepEqual(u.notFound, [])
  assert.deepEqual(await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(4)}), [])
  // The network text that list shows is accepted too.
  appendLines(s.log, spread(SIX, 5))
  await cli(['hacks', '--config', s.config], {env: nowEnv(8)})
  const again = await cli(['unblock', '2001:db8:1:2::/64', '--config', s.config], {env: nowEnv(9)})
  assert.equal(again.exitCode, 0, again.stderr)
  assert.match(again.stdout, /^2001:db8:1:2::\/64: unblocked and forgotten/m)
  const missing = await cli(['unblock', '2001:db8:1:2::9', '--config', s.config], {env: nowEnv(9)})
  assert.equal(missing.exitCode, 6)
})

test('block of an IPv6 address blocks its network entry; a network holding a whitelisted address is refused as a network', async (t) => {
  const s = setup(t)
  configure(s, {whitelist: ['127.0.0.0/8', '::1', '2001:db8:7:7::99']})
  const b = await cli(['block', '2001:db8:5:5::1', '203.0.113.5', '2001:db8:7:7::1', '--minutes', '30', '--config', s.config], {env: nowEnv(0)})
  assert.equal(b.exitCode, 0, b.stderr)
  assert.match(b.stdout, /^2001:db8:5:5::\/64 \(network of 2001:db8:5:5::1\): blocked on master for 30 min$/m)
  assert.match(b.stdout, /^203\.0\.113\.5: blocked on master for 30 min$/m)
  assert.match(b.stdout, /^2001:db8:7:7::1: blocked on master for 30 min$/m, 'its /64 holds a whitelisted address: the address alone')
  assert.deepEqual(
    (await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(1)})).map((r) => r.ip).sort(),
    ['2001:db8:5:5::/64', '2001:db8:7:7::1', '203.0.113.5'],
  )
  // A block of a neighbour is the same entry, blocked once more.
  await cli(['block', '2001:db8:5:5::2', '--config', s.config], {env: nowEnv(2)})
  const net = (await cliJson<Row[]>(['list', '--ip', '2001:db8:5:5::/64', '--config', s.config], {env: nowEnv(2)}))
  assert.deepEqual(net.map((r) => [r.ip, r.blocks]), [['2001:db8:5:5::/64', 2]])
  const refused = await cli(['block', '2001:db8:7:7::99', '--config', s.config], {env: nowEnv(2)})
  assert.equal(refused.exitCode, 2)
  assert.match(refused.stderr, /2001:db8:7:7::99 is never blocked/)
  // The rule set: the network and the lone address.
  configure(s, {whitelist: ['127.0.0.0/8', '::1', '2001:db8:7:7::99']}, {backend: 'iptables'})
  const dry = await cli(['hacks', '--dry-run', '--config', s.config], {env: nowEnv(3)})
  assert.match(dry.stdout, /-A rcguard-master -s 2001:db8:5:5::\/64 -j DROP/)
  assert.match(dry.stdout, /-A rcguard-master -s 2001:db8:7:7::1\/128 -j DROP/)
})

test('whitelist of one address lifts the network entry that holds it; its network is then counted per address', async (t) => {
  const s = setup(t)
  configure(s)
  appendLines(s.log, spread(SIX))
  await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  const w = await cliJson<Change>(['whitelist', '2001:db8:1:2::abc', '--config', s.config], {env: nowEnv(4)})
  assert.deepEqual(w.done, ['2001:db8:1:2::abc/128: whitelisted; lifted 2001:db8:1:2::/64'])
  appendLines(s.log, spread(SIX.slice(0, 2), 5))
  await cli(['hacks', '--config', s.config], {env: nowEnv(7)})
  const rows = await cliJson<Row[]>(['list', '--state', 'watching', '--config', s.config], {env: nowEnv(7)})
  assert.deepEqual(rows.map((r) => r.ip).sort(), ['2001:db8:1:2::1', '2001:db8:1:2::2'])
})

test('per-address IPv6 entries of an older database are merged into their network on the next run, and stay blocked', async (t) => {
  const s = setup(t)
  configure(s, {}, {backend: 'iptables'})
  const data = emptyData()
  const old = (ip: string, extra: Record<string, unknown>) => ({...newEntry(ip, 'master', T0.getTime(), 'bob'), attempts: 6, ...extra})
  data.entries.push(
    old('2001:db8:1:2::1', {blockedAt: T0.getTime(), blockedUntil: T0.getTime() + 60 * 60_000, blocks: 1}),
    old('2001:db8:1:2::2', {attempts: 2, failures: [T0.getTime()]}),
    old('203.0.113.9', {blockedAt: T0.getTime(), blockedUntil: null, blocks: 1}),
  )
  mkdirSync(dirname(s.db), {recursive: true, mode: 0o700})
  writeFileSync(s.db, JSON.stringify(data), {mode: 0o600})
  const rows = await cliJson<Row[]>(['list', '--config', s.config], {env: nowEnv(1)})
  assert.deepEqual(rows.map((r) => [r.ip, r.state, r.blocks]), [
    ['203.0.113.9', 'blocked', 1],
    ['2001:db8:1:2::/64', 'blocked', 1],
  ])
  // list does not write; a dry run still blocks the /64 from the file as it is.
  assert.equal(JSON.parse(readFileSync(s.db, 'utf8')).entries.length, 3)
  const dry = await cli(['hacks', '--dry-run', '--config', s.config], {env: nowEnv(1)})
  assert.match(dry.stdout, /-A rcguard-master -s 2001:db8:1:2::\/64 -j DROP/)
  configure(s)
  const h = await cli(['hacks', '--config', s.config], {env: nowEnv(2)})
  assert.equal(h.exitCode, 0, h.stderr)
  assert.equal(h.stdout, '', 'a merge is no new block')
  const saved = JSON.parse(readFileSync(s.db, 'utf8')) as {entries: {ip: string; attempts: number}[]}
  assert.deepEqual(saved.entries.map((e) => [e.ip, e.attempts]).sort(), [['2001:db8:1:2::/64', 8], ['203.0.113.9', 6]])
})

test('the notification digest and hacks --json name the network', async (t) => {
  const s = setup(t)
  const recorder = join(s.dir, 'record.sh')
  writeFileSync(recorder, '#!/bin/sh\ncat >> "$1"\n')
  chmodSync(recorder, 0o755)
  const recorded = join(s.dir, 'digest.json')
  configure(s, {notify: {command: {argv: [recorder, recorded]}}})
  appendLines(s.log, spread(SIX))
  const r = await cliJson<{newlyBlocked: {ip: string}[]}>(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.deepEqual(r.newlyBlocked.map((b) => b.ip), ['2001:db8:1:2::/64'])
  const digest = JSON.parse(readFileSync(recorded, 'utf8')) as {blocked: {ip: string; attempts: number}[]}
  assert.deepEqual(digest.blocked.map((b) => [b.ip, b.attempts]), [['2001:db8:1:2::/64', 6]])
})
