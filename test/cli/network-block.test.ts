/**
 * networkBlock through bin/run.js: a swarm of many addresses of one /24 (or
 * /48), each failing too rarely to be blocked alone, is blocked by `hacks` as
 * one network entry named by the network rule (the hacks line, `list`,
 * `list --json`); failures from inside it while it is blocked count against
 * it; fewer than minAddresses addresses block nothing; with firewall.ipv6Prefix
 * 64 the addresses of a /48 are its /64s, and with 128 its addresses; a /24
 * that holds a whitelisted address is never blocked (one warning) while its
 * addresses are still judged alone; the swarm's window survives across runs
 * (the database's `networks`) and lines out of order; a second block after the
 * first ended escalates; `unblock` lifts it; `scan --dry-run --replay` names
 * the rule. Backend none. Each log is read once before the swarm is written,
 * so that no line of the swarm is history of a first read (which counts only
 * the longest window of the windows rules, 10 min with `windows: []`).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {appendLines, at, cli, cliJson, f2, nowEnv, oneLogConfig, seededRandom, setup, type Setup} from '../helpers/env.js'

interface Row {
  ip: string
  state: string
  instance: string | null
  attempts: number
  blocks: number
  blockedAt: string | null
  blockedUntil: string | null
  rule?: string
}

const NET = '198.51.100.0/24'
const NET6 = '2001:db8:5::/48'
const v4 = (i: number): string => `198.51.100.${i}`
/** An address in the i-th /64 of 2001:db8:5::/48. */
const v6 = (i: number): string => `2001:db8:5:${i.toString(16)}::${(i + 1).toString(16)}`

function configure(s: Setup, extra: Record<string, unknown> = {}, firewall: Record<string, unknown> = {}): void {
  oneLogConfig(s, {networkBlock: {minAddresses: 10, periodMinutes: 60}, ...extra}, firewall)
}

/** The first read of the (empty) log: its position is saved, so every line written after it counts. */
async function prime(s: Setup): Promise<void> {
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(-1)})
  assert.equal(r.exitCode, 0, r.stderr)
}

/** One failure of each address, 10 s apart, from minute `min`. */
function pass(ips: string[], min: number): string[] {
  return ips.map((ip, i) => f2(at(min, i * 10), ip))
}

const range = (from: number, to: number): number[] => Array.from({length: to - from + 1}, (_, i) => from + i)

/** hacks: its exit, its lines saying `blocked …`, and its stderr. */
async function hacks(s: Setup, min: number): Promise<{blocked: string[]; stderr: string; stdout: string}> {
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(min)})
  assert.equal(r.exitCode, 0, `hacks at ${min}: ${r.stderr}`)
  return {blocked: r.stdout.split('\n').filter((l) => l.startsWith('blocked ')), stderr: r.stderr, stdout: r.stdout}
}

const list = (s: Setup, min: number, ...args: string[]): Promise<Row[]> => cliJson<Row[]>(['list', ...args, '--config', s.config], {env: nowEnv(min)})
const blockedRows = async (s: Setup, min: number): Promise<Row[]> => (await list(s, min)).filter((r) => r.state === 'blocked')
const savedNetworks = (s: Setup): {network: string; recent: {ip: string}[]}[] | undefined =>
  (JSON.parse(readFileSync(s.db, 'utf8')) as {networks?: {network: string; recent: {ip: string}[]}[]}).networks

test('a swarm of 50 addresses of a /24, twice each within 30 min: hacks blocks the /24 once by the network rule and no address alone; later failures from inside count against it', async (t) => {
  const s = setup(t)
  configure(s)
  await prime(s)
  const fifty = range(1, 50).map(v4)
  appendLines(s.log, [...pass(fifty, 0), ...pass(fifty, 15)])
  const first = await hacks(s, 25)
  // The 10th address (at 13:01:30) completed the window; the other 90 failures came from inside the blocked network.
  assert.deepEqual(first.blocked, [
    `blocked ${NET} on master until 2026-11-25 14:01:30Z by 10 addresses of the network within 60 min (90 failed logins, last user "alice@example.com")`,
  ])
  assert.equal(first.stderr, '')
  const rows = await blockedRows(s, 25)
  assert.deepEqual(rows.map((r) => [r.ip, r.rule, r.attempts, r.blocks, r.blockedAt, r.blockedUntil]), [
    [NET, 'network:10/60', 90, 1, '2026-11-25T13:01:30.000Z', '2026-11-25T14:01:30.000Z'],
  ])
  assert.deepEqual((await list(s, 25)).filter((r) => r.ip !== NET && r.state === 'blocked'), [], 'no address of the swarm is blocked alone')
  assert.deepEqual((await list(s, 25, '--ip', v4(222))).map((r) => r.ip), [NET], 'an address of the /24 that never failed is in the entry')
  const table = await cli(['list', '--config', s.config], {env: nowEnv(25)})
  assert.match(table.stdout, /^198\.51\.100\.0\/24 +blocked +90 .* 10 addrs in 60m +master /m)
  // The window was cleared by the block: nothing of the swarm is kept for another.
  assert.equal(savedNetworks(s), undefined)

  // More failures from inside while it is blocked: they count against the network, and block nothing anew.
  appendLines(s.log, pass([v4(3), v4(77), v4(200), v4(201), v4(202)], 30))
  const second = await hacks(s, 31)
  assert.deepEqual(second.blocked, [])
  const after = await blockedRows(s, 31)
  assert.deepEqual(after.map((r) => [r.ip, r.attempts, r.blocks, r.blockedUntil]), [[NET, 95, 1, '2026-11-25T14:01:30.000Z']])
  assert.equal(savedNetworks(s), undefined, 'failures from inside a blocked network make no new window')
})

test('9 addresses of a /24 failing twice each never block it (minAddresses 10); their window is kept', async (t) => {
  const s = setup(t)
  configure(s)
  await prime(s)
  const nine = range(1, 9).map(v4)
  appendLines(s.log, [...pass(nine, 0), ...pass(nine, 15)])
  const r = await hacks(s, 20)
  assert.deepEqual(r.blocked, [])
  assert.deepEqual(await blockedRows(s, 20), [])
  assert.deepEqual(savedNetworks(s)?.map((n) => [n.network, n.recent.length]), [[NET, 9]])
})

for (const firewallPrefix of [64, 128]) {
  test(`IPv6 with firewall.ipv6Prefix ${firewallPrefix}: 12 addresses in 12 different /64s of a /48 block the /48`, async (t) => {
    const s = setup(t)
    configure(s, {}, {ipv6Prefix: firewallPrefix})
    await prime(s)
    const twelve = range(1, 12).map(v6)
    appendLines(s.log, pass(twelve, 0))
    const r = await hacks(s, 5)
    assert.deepEqual(r.blocked, [
      `blocked ${NET6} on master until 2026-11-25 14:01:30Z by 10 addresses of the network within 60 min (2 failed logins, last user "alice@example.com")`,
    ])
    const rows = await blockedRows(s, 5)
    assert.deepEqual(rows.map((x) => [x.ip, x.rule, x.attempts]), [[NET6, 'network:10/60', 2]])
    assert.deepEqual((await list(s, 5, '--ip', '2001:db8:5:ffff::1')).map((x) => x.ip), [NET6])
  })
}

test('with firewall.ipv6Prefix 64, 12 addresses of one /64 are one address for the /48: no network block', async (t) => {
  const s = setup(t)
  configure(s, {}, {ipv6Prefix: 64})
  await prime(s)
  // One failure each, 5 min apart: the first rule (6 within 10 min) never fills for the /64 either.
  appendLines(s.log, range(1, 12).map((i) => f2(at(i * 5), `2001:db8:5:1::${i}`)))
  const r = await hacks(s, 65)
  assert.deepEqual(r.blocked, [])
  assert.deepEqual(await blockedRows(s, 65), [])
})

test('a swarm in a /24 that holds a whitelisted address: no network block, one warning, and its addresses are still judged alone', async (t) => {
  const s = setup(t)
  configure(s, {whitelist: ['127.0.0.0/8', '::1', v4(200)]})
  await prime(s)
  const fifty = range(1, 50).map(v4)
  // One of them (198.51.100.7) also fails 6 times within 10 min: the first rule blocks it alone.
  const seven = range(0, 5).map((k) => f2(at(20, k * 30), v4(7)))
  appendLines(s.log, [...pass(fifty, 0), ...pass(fifty, 15), ...seven])
  const r = await hacks(s, 25)
  assert.deepEqual(r.blocked.map((l) => l.split(' ')[1]), [v4(7)])
  assert.match(r.blocked[0] ?? '', / by 6 failures within 10 min /)
  const warnings = r.stderr.split('\n').filter((l) => l.includes('networkBlock'))
  assert.deepEqual(warnings, [
    `rcguard: warning: networkBlock: ${NET} on master is not blocked: it holds what is never blocked: whitelisted in the configuration (198.51.100.200/32)`,
  ])
  const rows = await list(s, 25)
  assert.ok(!rows.some((x) => x.ip === NET), `no network entry: ${JSON.stringify(rows)}`)
  assert.deepEqual(rows.filter((x) => x.state === 'blocked').map((x) => [x.ip, x.rule]), [[v4(7), 'failures:6/10']])
  // The refused swarm's window was dropped when it was told; what failed after starts a new one, short of a swarm.
  assert.ok((savedNetworks(s) ?? []).every((n: {recent: unknown[]}) => n.recent.length < 10), JSON.stringify(savedNetworks(s)))
})

test('across runs: the swarm split over 3 hacks runs (kept in the database `networks`) blocks as the same lines in one run do', async (t) => {
  const lines = [pass(range(1, 4).map(v4), 0), pass(range(5, 8).map(v4), 10), pass(range(9, 12).map(v4), 20)]

  const one = setup(t)
  configure(one)
  await prime(one)
  appendLines(one.log, lines.flat())
  const inOne = await hacks(one, 25)
  assert.equal(inOne.blocked.length, 1, inOne.stdout)
  assert.match(inOne.blocked[0] ?? '', /^blocked 198\.51\.100\.0\/24 on master until 2026-11-25 14:20:10Z by 10 addresses of the network within 60 min /)

  const split = setup(t)
  configure(split)
  await prime(split)
  appendLines(split.log, lines[0] ?? [])
  assert.deepEqual((await hacks(split, 5)).blocked, [])
  assert.deepEqual(savedNetworks(split)?.map((n) => [n.network, n.recent.length]), [[NET, 4]])
  appendLines(split.log, lines[1] ?? [])
  assert.deepEqual((await hacks(split, 15)).blocked, [])
  assert.deepEqual(savedNetworks(split)?.map((n) => [n.network, n.recent.length]), [[NET, 8]])
  appendLines(split.log, lines[2] ?? [])
  const third = await hacks(split, 25)
  assert.deepEqual(third.blocked, inOne.blocked)
  assert.deepEqual(
    (await blockedRows(split, 25)).map((r) => [r.ip, r.rule, r.blockedAt, r.blockedUntil, r.attempts]),
    (await blockedRows(one, 25)).map((r) => [r.ip, r.rule, r.blockedAt, r.blockedUntil, r.attempts]),
  )
})

test('the swarm with its lines shuffled within the run still blocks the /24, once, by the network rule', async (t) => {
  const s = setup(t)
  configure(s)
  await prime(s)
  const fifty = range(1, 50).map(v4)
  const lines = [...pass(fifty, 0), ...pass(fifty, 15)]
  const random = seededRandom(20261125)
  for (let i = lines.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[lines[i], lines[j]] = [lines[j] as string, lines[i] as string]
  }
  appendLines(s.log, lines)
  const r = await hacks(s, 25)
  assert.equal(r.blocked.length, 1, r.stdout)
  assert.match(r.blocked[0] ?? '', /^blocked 198\.51\.100\.0\/24 on master until .* by 10 addresses of the network within 60 min /)
  const rows = await blockedRows(s, 25)
  assert.deepEqual(rows.map((x) => [x.ip, x.rule, x.blocks]), [[NET, 'network:10/60', 1]])
})

test('escalation: a second swarm after the block ended blocks the /24 for twice as long; unblock lifts it', async (t) => {
  const s = setup(t)
  configure(s)
  await prime(s)
  const twelve = range(1, 12).map(v4)
  appendLines(s.log, pass(twelve, 0))
  const first = await hacks(s, 5)
  assert.equal(first.blocked.length, 1, first.stdout)
  assert.match(first.blocked[0] ?? '', /^blocked 198\.51\.100\.0\/24 on master until 2026-11-25 14:01:30Z by 10 addresses of the network within 60 min /)
  // Over at 14:01:30; a run after that lifts it and keeps its history.
  assert.deepEqual((await hacks(s, 70)).blocked, [])
  assert.deepEqual(await blockedRows(s, 70), [])
  assert.deepEqual((await list(s, 70)).filter((r) => r.ip === NET).map((r) => [r.blocks]), [[1]])

  appendLines(s.log, pass(range(21, 32).map(v4), 120))
  const again = await hacks(s, 125)
  assert.equal(again.blocked.length, 1, again.stdout)
  assert.match(again.blocked[0] ?? '', /^blocked 198\.51\.100\.0\/24 on master until 2026-11-25 17:01:30Z by 10 addresses of the network within 60 min /)
  const rows = await blockedRows(s, 125)
  assert.deepEqual(rows.map((r) => [r.ip, r.blocks, r.blockedAt, r.blockedUntil]), [[NET, 2, '2026-11-25T15:01:30.000Z', '2026-11-25T17:01:30.000Z']])

  const u = await cli(['unblock', NET, '--config', s.config], {env: nowEnv(126)})
  assert.equal(u.exitCode, 0, u.stderr)
  // With the entries of the addresses whose failure came before the block (each counted alone, once).
  assert.match(u.stdout, new RegExp(`^198\\.51\\.100\\.0/24: network 198\\.51\\.100\\.0/24, ${range(21, 30).map((i) => `198\\.51\\.100\\.${i}`).join(', ')} unblocked and forgotten`, 'm'))
  assert.deepEqual(await blockedRows(s, 126), [])
  assert.deepEqual((await list(s, 126)).filter((r) => r.ip === NET), [])
})

test('scan --dry-run --replay --log reports the network block with its rule, in text and JSON', async (t) => {
  const s = setup(t)
  configure(s)
  const fifty = range(1, 50).map(v4)
  appendLines(s.log, [...pass(fifty, 0), ...pass(fifty, 15)])
  const r = await cli(['scan', '--dry-run', '--replay', '--log', s.log, '--config', s.config], {env: nowEnv(200)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.deepEqual(
    r.stdout.split('\n').filter((l) => l.startsWith('would block')),
    ['would block 198.51.100.0/24 on master at 2026-11-25 13:01:30Z until 2026-11-25 14:01:30Z by 10 addresses of the network within 60 min'],
  )
  assert.match(r.stdout, /^ {2}10 addresses of the network within 60 min: 1 block\(s\) of 1 address\(es\)$/m)
  const json = await cliJson<{replay: {ip: string; at: string; until: string | null; rule: string}[]}>(['scan', '--dry-run', '--replay', '--log', s.log, '--config', s.config], {env: nowEnv(200)})
  assert.deepEqual(json.replay, [{ip: NET, instance: 'master', at: '2026-11-25T13:01:30.000Z', until: '2026-11-25T14:01:30.000Z', rule: 'network:10/60'}])
  // A dry run writes nothing.
  assert.throws(() => readFileSync(s.db, 'utf8'))
})
